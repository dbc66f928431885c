import { afterEach, describe, expect, it, vi } from 'vitest';
import { printStartBanner } from '../../../src/cli/banner.js';
import { DEFAULTS } from '../../../src/config/load.js';
import type { Gateway } from '../../../src/main.js';

function banner(gateway: Partial<Gateway>): string {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  printStartBanner({ url: 'http://127.0.0.1:8402', lndSource: 'lnd', ...gateway } as Gateway, {
    ...DEFAULTS,
    lnd: { socket: '10.0.0.1:10009', cert: 'c', macaroon: 'm' },
  });
  return out;
}
afterEach(() => vi.restoreAllMocks());

describe('start banner', () => {
  it('names only what runs: no proxy, no MQTT, no sample requests when they are not configured', () => {
    const out = banner({});
    expect(out).toContain('LND at 10.0.0.1:10009');
    expect(out).toMatch(/Console: +http:\/\/\S+\/console /);
    expect(out).not.toMatch(/L402 proxy|MQTT|chat\/completions/);
  });

  it('shows the sample requests only with the sample service, never beside configured services', () => {
    const configured = banner({
      proxy: { url: 'http://127.0.0.1:8403', services: ['weather'], close: async () => undefined },
    });
    expect(configured).toContain('services: weather;');
    expect(configured).not.toContain('chat/completions');
    const sample = banner({
      proxy: {
        url: 'http://127.0.0.1:8403',
        services: ['sample-llm'],
        sampleUpstream: 'http://127.0.0.1:8404',
        close: async () => undefined,
      },
    });
    expect(sample).toContain('SAMPLE upstream');
    expect(sample).toContain('/v1/chat/completions');
  });
});
