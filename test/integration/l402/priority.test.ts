import { decodePaymentRequest, pay } from 'ln-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaidStack } from '../../support/paid-stack.js';
import { rawLnd } from '../../support/regtest.js';

/**
 * Priority pricing on regtest: a priority request pays the quoted price, base × class multiplier
 * × demand factor, with bob's LND paying the proxy's (alice's) invoice.
 */
const BASE = 1001n;
const s = new PaidStack({
  operatorKey: 'priority-integration-operator-key-0123456789',
  seed: (upstream) => [
    {
      name: 'prio',
      pathPrefix: '/v1/',
      upstream,
      mode: 'paid',
      pricePerRequestMsat: String(BASE),
      creditMsat: '5005',
      lifetimeSeconds: 3600,
      priority: {
        classes: { standard: { multiplierBps: 10_000 }, high: { multiplierBps: 15_000 } },
        capacity: 2,
        demandSteps: [
          { fromPercent: 50, factorBps: 12_500 },
          { fromPercent: 100, factorBps: 20_000 },
        ],
      },
    },
  ],
});

beforeAll(() => s.open());
afterAll(() => s.close());

const CHAT = '/v1/chat/completions';
const body = (extra: object = {}): string =>
  JSON.stringify({ model: 'sample-small', messages: [{ role: 'user', content: 'hi' }], ...extra });

/** The 402 of a request: its body, and the invoice's amount as bob's LND decodes it. */
async function challenge(headers: Record<string, string>): Promise<{
  body: { error: { code: string }; priority?: Record<string, unknown> };
  macaroon: string;
  invoice: string;
  invoiceMsat: bigint;
}> {
  const res = await fetch(`${s.proxy.url}${CHAT}`, {
    method: 'POST',
    headers,
    body: body({ max_tokens: 2 }),
  });
  expect(res.status).toBe(402);
  const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')!;
  const decoded = await decodePaymentRequest({ lnd: await rawLnd('bob'), request: m[2]! });
  return {
    body: (await res.json()) as { error: { code: string }; priority?: Record<string, unknown> },
    macaroon: m[1]!,
    invoice: m[2]!,
    invoiceMsat: BigInt(decoded.mtokens),
  };
}

async function paid(c: { macaroon: string; invoice: string }): Promise<string> {
  const p = await pay({ lnd: await rawLnd('bob'), request: c.invoice });
  return `L402 ${c.macaroon}:${p.secret}`;
}

describe('priority pricing (regtest)', () => {
  it('a priority request pays the quoted base × multiplier × demand, locked in its challenge', async () => {
    // Load: two long streams of an ordinary credential keep the service at 2 of 2 in flight.
    const plain = await paid(await challenge({ 'content-type': 'application/json' }));
    const streams = [0, 1].map(() => new AbortController());
    const open = await Promise.all(
      streams.map((a) =>
        fetch(`${s.proxy.url}${CHAT}`, {
          method: 'POST',
          headers: { authorization: plain, 'content-type': 'application/json' },
          body: body({ stream: true, max_tokens: 4096 }),
          signal: a.signal,
        }),
      ),
    );
    expect(open.map((r) => r.status)).toEqual([200, 200]);

    const q = (await (await fetch(`${s.proxy.url}/l402/quote?service=prio&priority=high`)).json()) as {
      priority: Record<string, unknown>;
    };
    // 1001 × 1.5 × 2.0 = 3003 msat
    const price = (BASE * 15_000n * 20_000n + 10n ** 8n - 1n) / 10n ** 8n;
    expect(price).toBe(3003n);
    expect(q.priority).toMatchObject({
      class: 'high',
      inFlight: 2,
      multiplierBps: 15_000,
      demandFactorBps: 20_000,
      priceMsat: String(price),
    });
    const c = await challenge({ 'content-type': 'application/json', 'coulomb-priority': 'high' });
    expect(c.invoiceMsat).toBe(price);
    expect(c.body.priority).toMatchObject({ class: 'high', priceMsat: String(price) });
    for (const a of streams) a.abort();

    // bob pays; the credential is served at class high for the locked price, the load gone or not.
    const credential = await paid(c);
    const r = await fetch(`${s.proxy.url}${CHAT}`, {
      method: 'POST',
      headers: { authorization: credential, 'content-type': 'application/json', 'coulomb-priority': 'high' },
      body: body({ max_tokens: 2 }),
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('coulomb-priority')).toBe('high');
    expect(r.headers.get('x-l402-credit-remaining-msat')).toBe('0');
    await r.text();
    // Its credit is spent: the next request is a new challenge for its class, at today's load.
    const again = await challenge({ authorization: credential, 'content-type': 'application/json' });
    expect(again.body.error.code).toBe('PAYMENT_REQUIRED');
    expect(again.body.priority).toMatchObject({ class: 'high' });
  });
});
