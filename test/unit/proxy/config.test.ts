import { describe, expect, it } from 'vitest';
import { parseProxyConfig, sampleProxyConfig } from '../../../src/proxy/config.js';
import { closingEvents, costOf, StreamMeter, worstCase } from '../../../src/proxy/metering.js';
import { RateLimiter } from '../../../src/proxy/rate-limit.js';
import { msat } from '../../../src/domain/msat.js';
import { ConfigError } from '../../../src/domain/errors.js';

const svc = (extra: Record<string, unknown> = {}) => ({
  services: [
    {
      name: 'a',
      pathPrefix: '/',
      upstream: 'http://127.0.0.1:1',
      mode: 'paid',
      pricePerRequestMsat: '10',
      creditMsat: '100',
      ...extra,
    },
  ],
});

describe('proxy config', () => {
  it('accepts the sample and fills defaults', () => {
    const { config, services } = parseProxyConfig(sampleProxyConfig('http://127.0.0.1:8404'));
    expect(config.host).toBe('127.0.0.1');
    expect(services[0]!.models?.get('*')).toEqual({ inputPerTokenMsat: 1000n, outputPerTokenMsat: 2000n });
    expect(parseProxyConfig(svc()).services[0]!.config.lifetimeSeconds).toBe(86_400);
  });

  it.each([
    [svc({ upstream: 'ftp://x' }), /upstream/],
    [svc({ mode: 'maybe' }), /mode/],
    [svc({ creditMsat: '-1' }), /creditMsat/],
    [svc({ name: 'Bad Name' }), /name/],
    [svc({ pricePerRequestMsat: undefined }), /needs pricePerRequestMsat, models or subscription/],
    [svc({ mode: 'freebie' }), /freeRequests/],
    [svc({ hostRegexp: '(' }), /invalid host regexp/],
    [svc({ surprise: 1 }), /invalid proxy configuration/],
    [{ services: [svc().services[0], svc().services[0]] }, /unique/],
    [svc({ upstream: 'http://' }), /upstream is not a valid/],
    [svc({ upstream: 'http://[' }), /upstream is not a valid/],
    [svc({ upstream: 'https://a b' }), /upstream is not a valid/],
    [svc({ headers: { 'bad header\n': 'v' } }), /not an HTTP token/],
    [svc({ headers: { 'x-key': 'v\r\nx: y' } }), /characters HTTP cannot carry/],
  ])('rejects bad config #%# with a message naming the problem', (raw, message) => {
    expect(() => parseProxyConfig(raw)).toThrow(ConfigError);
    expect(() => parseProxyConfig(raw)).toThrow(message);
  });
});

describe('metering', () => {
  const p = { inputPerTokenMsat: msat(2), outputPerTokenMsat: msat(100) };

  it('reserves the worst case from max_tokens, or nothing bounded without it', () => {
    expect(
      worstCase(
        p,
        { messages: [{ role: 'user', content: 'abcdefgh' }], max_tokens: 10 },
        '/v1/chat/completions',
      ),
    ).toBe(costOf(p, 2n * 2n + 16n, 10n));
    expect(worstCase(p, { messages: [] }, '/v1/chat/completions')).toBeUndefined();
    expect(worstCase(p, { input: 'abcd' }, '/v1/embeddings')).toBe(costOf(p, 1n * 2n + 16n, 0n));
  });

  it('follows an SSE stream split anywhere, and finds the usage chunk', () => {
    const stream =
      'data: {"choices":[{"delta":{"content":"hello"}}]}\n\n' +
      'data: {"choices":[{"delta":{"content":" world"}}]}\n\n' +
      'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n' +
      'data: [DONE]\n\n';
    for (const cut of [1, 7, 40, 61, stream.length - 3]) {
      const m = new StreamMeter();
      const events = [...m.push(stream.slice(0, cut)), ...m.push(stream.slice(cut))];
      expect(events.join('')).toBe(stream);
      expect(m.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2 });
      expect(m.outputChars).toBe(11);
      expect(m.done).toBe(true);
    }
  });

  it('closes a cut stream with a well-formed chunk and [DONE]', () => {
    const events = closingEvents('/v1/chat/completions', 'm').split('\n\n').filter(Boolean);
    expect(JSON.parse(events[0]!.slice(6))).toMatchObject({
      object: 'chat.completion.chunk',
      choices: [{ finish_reason: 'length' }],
    });
    expect(events[1]).toBe('data: [DONE]');
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then asks to retry after the refill time', () => {
    let now = 0;
    const r = new RateLimiter(2, 1, () => now);
    expect([r.take('k'), r.take('k')]).toEqual([0, 0]);
    expect(r.take('k')).toBe(500);
    now += 500;
    expect(r.take('k')).toBe(0);
    expect(r.take('other')).toBe(0);
  });
});
