import { describe, expect, it } from 'vitest';
import { parseProxyConfig } from '../../../src/proxy/config.js';

const base = { name: 's', pathPrefix: '/', upstream: 'http://127.0.0.1:1', mode: 'paid', creditMsat: '5000' };

describe('proxy config: schemes and MPP terms', () => {
  it('L402 only by default, no MPP terms', () => {
    const [s] = parseProxyConfig({ services: [{ ...base, pricePerRequestMsat: '10' }] }).services;
    expect(s!.schemes).toEqual({ l402: true, mpp: false });
    expect(s!.mpp).toBeUndefined();
  });

  it('per-request services default to charge and session; metered ones to session', () => {
    const { services } = parseProxyConfig({
      services: [
        { ...base, pricePerRequestMsat: '1500', schemes: ['l402', 'mpp'] },
        {
          ...base,
          name: 'm',
          models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '2' } },
          schemes: ['mpp'],
        },
      ],
    });
    expect(services[0]!.mpp).toMatchObject({ intents: ['charge', 'session'], depositMultiplier: 20 });
    expect(services[1]!.schemes).toEqual({ l402: false, mpp: true });
    expect(services[1]!.mpp?.intents).toEqual(['session']);
  });

  it('refuses a charge on a metered service, and mpp settings without the scheme', () => {
    expect(() =>
      parseProxyConfig({
        services: [
          {
            ...base,
            models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '2' } },
            schemes: ['mpp'],
            mpp: { intents: ['charge'] },
          },
        ],
      }),
    ).toThrow(/charge intent/);
    expect(() =>
      parseProxyConfig({ services: [{ ...base, pricePerRequestMsat: '1', mpp: { intents: ['charge'] } }] }),
    ).toThrow(/need "mpp" in schemes/);
    expect(() =>
      parseProxyConfig({ services: [{ ...base, pricePerRequestMsat: '1', schemes: ['x'] }] }),
    ).toThrow(/invalid proxy configuration/);
  });
});
