import { decodePaymentRequest, pay } from 'ln-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { PaidStack } from '../../support/paid-stack.js';
import { rawLnd } from '../../support/regtest.js';

/**
 * Subscription pricing on regtest, bob's LND paying the proxy's (alice's) invoices: a
 * subscription credential serves its quota, then bills overage from credit bought on the same
 * credential; its count survives a restart of the gateway; a paid renewal is credited once.
 */
const PERIOD = 3600;
const PRICE = 40_000n;
const OVERAGE = 1_700n;
const CREDIT = 5_000n;
/** The proxy's clock: moved past the period's end for the renewal. */
let clock = Date.now();
const s = new PaidStack({
  operatorKey: 'subscription-integration-operator-key-0123456789',
  now: () => clock,
  seed: (upstream) => [
    {
      name: 'subs',
      pathPrefix: '/v1/',
      upstream,
      mode: 'paid',
      creditMsat: String(CREDIT),
      lifetimeSeconds: 10 * PERIOD,
      subscription: {
        periodSeconds: PERIOD,
        priceMsat: String(PRICE),
        includedRequests: 2,
        overageMsatPerRequest: String(OVERAGE),
      },
    },
  ],
});

beforeAll(() => s.open());
afterAll(() => s.close());

const CHAT = '/v1/chat/completions';
const body = JSON.stringify({
  model: 'sample-small',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 2,
});
const post = (headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${s.proxy.url}${CHAT}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });

const bobPays = async (request: string): Promise<string> =>
  (await pay({ lnd: await rawLnd('bob'), request })).secret;
const amountOf = async (request: string): Promise<bigint> =>
  BigInt((await decodePaymentRequest({ lnd: await rawLnd('bob'), request })).mtokens);
const balance = async (id: string): Promise<bigint> => {
  const a = await s.accounts.services.ledger.getAccount(id);
  return a ? a.creditsPosted - a.debitsPosted : 0n;
};

interface Refusal {
  error: { code: string };
  invoice: string;
  amountMsat: string;
  subscription: { used: number; includedRequests: number; periodEnd: number };
}

describe('subscription pricing (regtest)', () => {
  it('serves the quota, then bills overage; keeps the count across a restart; credits a renewal once', async () => {
    // Buy: the challenge's invoice is the period's price.
    const c = await post();
    expect(c.status).toBe(402);
    const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(c.headers.get('www-authenticate') ?? '')!;
    expect(await amountOf(m[2]!)).toBe(PRICE);
    const offer = (await c.json()) as { subscription: { periodEnd: number } };
    const periodEnd = offer.subscription.periodEnd;
    const credential = `L402 ${m[1]}:${await bobPays(m[2]!)}`;
    const auth = { authorization: credential };

    // The quota: two requests free.
    for (const used of [1, 2]) {
      const r = await post(auth);
      expect(r.status).toBe(200);
      expect(r.headers.get('coulomb-subscription')).toBe(`used=${used}, included=2, period-end=${periodEnd}`);
      await r.text();
    }
    expect(await balance('svc:subs')).toBe(PRICE);

    // Beyond it: no credit yet, so an invoice for overage credit on the same credential.
    const short = await post(auth);
    expect(short.status).toBe(402);
    const refusal = (await short.json()) as Refusal;
    expect(refusal.error.code).toBe('SUBSCRIPTION_CREDIT_REQUIRED');
    expect(await amountOf(refusal.invoice)).toBe(CREDIT);
    await bobPays(refusal.invoice);
    const over = await post(auth);
    expect(over.status).toBe(200);
    expect(over.headers.get('coulomb-subscription')).toBe(`used=3, included=2, period-end=${periodEnd}`);
    expect(over.headers.get('x-l402-credit-remaining-msat')).toBe(String(CREDIT - OVERAGE));
    await over.text();
    expect(await balance('svc:subs')).toBe(PRICE + OVERAGE);

    // A restart of the gateway (the ledger closed and opened again): the count goes on.
    await s.reopen();
    const after = await post(auth);
    expect(after.status).toBe(200);
    expect(after.headers.get('coulomb-subscription')).toBe(`used=4, included=2, period-end=${periodEnd}`);
    await after.text();
    expect(await balance('svc:subs')).toBe(PRICE + 2n * OVERAGE);

    // The period ends: a renewal invoice of the price, crediting the same credential.
    clock = periodEnd * 1000;
    const ended = await post(auth);
    expect(ended.status).toBe(402);
    const renewal = (await ended.json()) as Refusal;
    expect(renewal.error.code).toBe('SUBSCRIPTION_RENEWAL_REQUIRED');
    expect(await amountOf(renewal.invoice)).toBe(PRICE);
    await bobPays(renewal.invoice);
    const renewed = await Promise.all([post(auth), post(auth)]);
    expect(renewed.map((r) => r.status)).toEqual([200, 200]);
    const headers = renewed.map((r) => r.headers.get('coulomb-subscription')).sort();
    expect(headers).toEqual([
      `used=1, included=2, period-end=${periodEnd + PERIOD}`,
      `used=2, included=2, period-end=${periodEnd + PERIOD}`,
    ]);
    await Promise.all(renewed.map((r) => r.text()));
    // Renewed once: the price charged once more, the overage credit left as it was.
    expect(await balance('svc:subs')).toBe(2n * PRICE + 2n * OVERAGE);
    const tokenId = decodeV2(Buffer.from(m[1]!, 'base64')).identifier.subarray(34).toString('hex');
    expect(await balance(`l402:${tokenId}`)).toBe(CREDIT - 2n * OVERAGE);
  });
});
