import { pay } from 'ln-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { PaidStack } from '../../support/paid-stack.js';
import { rawLnd } from '../../support/regtest.js';

const OPERATOR_KEY = 'routing-integration-operator-key-0123456789';
const LARGE = { in: 10n, out: 1000n };
const SMALL = { in: 1n, out: 100n };
let upstreamUrl = '';
const routing = {
  tiers: [
    { name: 'normal', minBalanceMsat: '500000' },
    { name: 'low', minBalanceMsat: '100000', models: { 'sample-large': 'sample-small' } },
  ],
};
const s = new PaidStack({
  operatorKey: OPERATOR_KEY,
  seed: (upstream) => {
    upstreamUrl = upstream;
    return [
      {
        name: 'llm',
        pathPrefix: '/v1/',
        upstream,
        mode: 'paid',
        models: {
          'sample-large': { inputPerTokenMsat: String(LARGE.in), outputPerTokenMsat: String(LARGE.out) },
          'sample-small': { inputPerTokenMsat: String(SMALL.in), outputPerTokenMsat: String(SMALL.out) },
        },
        creditMsat: '200000',
        lifetimeSeconds: 3600,
        routing,
      },
    ];
  },
});

beforeAll(() => s.open());
afterAll(() => s.close());

const chat = (extra: object = {}) =>
  JSON.stringify({
    model: 'sample-large',
    max_tokens: 6,
    messages: [{ role: 'user', content: 'route me' }],
    ...extra,
  });
const post = (body: string, authorization?: string) =>
  fetch(`${s.proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body,
  });

/** A challenge of the service, and its macaroon and invoice. */
async function challenge(): Promise<{ macaroon: string; invoice: string }> {
  const res = await post(chat());
  expect(res.status).toBe(402);
  const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(res.headers.get('www-authenticate')!)!;
  return { macaroon: m[1]!, invoice: m[2]! };
}

const tokenAccountOf = (macaroon: string): string =>
  `l402:${decodeV2(Buffer.from(macaroon, 'base64')).identifier.subarray(34).toString('hex')}`;

const credit = async (account: string): Promise<bigint> => {
  await s.accounts.services.ledger.flush();
  const a = await s.accounts.services.ledger.requireAccount(account);
  expect(a.debitsPending).toBe(0n);
  return balanceOf(a);
};

/** Moves the payer's money elsewhere, as its own spending would. */
async function spend(account: string, amount: bigint): Promise<void> {
  await s.accounts.services.ledger.transfer({
    debitAccountId: account,
    creditAccountId: OPERATOR_ACCOUNT,
    amount: msat(amount),
    code: 'transfer',
  }).durable;
}

describe('budget-aware model routing on regtest', () => {
  it('serves the strong model, then the cheaper one below a tier, then refuses below the last tier without charging', async () => {
    const a = s.accounts.services;
    await a.ledger.createAccount({ id: 'route-agent', kind: 'agent', name: 'agent' }).durable;
    await a.policies.set('route-agent', tierPolicy('L2'));
    await a.ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: 'route-agent',
      amount: msat(1_000_000),
      code: 'funding',
    }).durable;

    // The agent account pays the challenge internally: the proxy learns its payer.
    const { macaroon, invoice } = await challenge();
    const paid = await a.payments.pay('route-agent', { request: invoice });
    expect(paid.kind).toBe('internal');
    const authorization = `L402 ${macaroon}:${paid.preimage!}`;
    const token = tokenAccountOf(macaroon);
    expect(availableOf(await a.ledger.requireAccount('route-agent'))).toBe(800_000n);

    // 800,000 ≥ 500,000: tier normal, the strong model as asked, billed at its price.
    const strong = await post(chat(), authorization);
    expect(strong.status).toBe(200);
    expect(strong.headers.get('coulomb-budget-tier')).toBe('normal');
    expect(strong.headers.get('coulomb-model-routed')).toBeNull();
    const first = (await strong.json()) as {
      model: string;
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    expect(first.model).toBe('sample-large');
    const afterStrong = await credit(token);
    expect(200_000n - afterStrong).toBe(
      BigInt(first.usage.prompt_tokens) * LARGE.in + BigInt(first.usage.completion_tokens) * LARGE.out,
    );

    // The payer's balance falls to 400,000: tier low serves sample-small (the upstream sees it),
    // billed at sample-small's price; streams too.
    await spend('route-agent', 400_000n);
    const routed = await post(chat(), authorization);
    expect(routed.status).toBe(200);
    expect(routed.headers.get('coulomb-budget-tier')).toBe('low');
    expect(routed.headers.get('coulomb-model-routed')).toBe('sample-large;served=sample-small;tier=low');
    const second = (await routed.json()) as typeof first;
    expect(second.model).toBe('sample-small');
    const afterRouted = await credit(token);
    expect(afterStrong - afterRouted).toBe(
      BigInt(second.usage.prompt_tokens) * SMALL.in + BigInt(second.usage.completion_tokens) * SMALL.out,
    );
    const stream = await post(chat({ stream: true }), authorization);
    expect(stream.headers.get('coulomb-model-routed')).toBe('sample-large;served=sample-small;tier=low');
    const events = (await stream.text()).split('\n\n').filter((e) => e.startsWith('data: {'));
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect((JSON.parse(e.slice(6)) as { model: string }).model).toBe('sample-small');

    // Below the last tier (50,000 < 100,000): refused with the code, nothing charged.
    await spend('route-agent', 350_000n);
    const before = await credit(token);
    const revenue = await credit('svc:llm');
    const refused = await post(chat({ model: 'sample-small' }), authorization);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({
      error: { code: 'PAYER_BELOW_LAST_TIER', tier: 'low', minBalanceMsat: '100000' },
    });
    expect(await credit(token)).toBe(before);
    expect(await credit('svc:llm')).toBe(revenue);

    // Its earnings lift it over the threshold again: the strong model is back.
    await a.ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: 'route-agent',
      amount: msat(600_000),
      code: 'funding',
    }).durable;
    const back = await post(chat(), authorization);
    expect(back.headers.get('coulomb-budget-tier')).toBe('normal');
    expect(((await back.json()) as typeof first).model).toBe('sample-large');
  });

  it('serves a credential paid over Lightning as asked: it has no payer account', async () => {
    const { macaroon, invoice } = await challenge();
    const paid = await pay({ lnd: await rawLnd('bob'), request: invoice });
    const res = await post(chat(), `L402 ${macaroon}:${paid.secret}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('coulomb-budget-tier')).toBeNull();
    expect(res.headers.get('coulomb-model-routed')).toBeNull();
    expect(((await res.json()) as { model: string }).model).toBe('sample-large');
  });

  it('is configured on the admin API: validated (400 INVALID_ROUTING), shown, and in the discovery document', async () => {
    const admin = async (method: 'POST' | 'GET', url: string, payload?: object) => {
      const res = await s.api.inject({
        method,
        url,
        headers: { authorization: `Bearer ${OPERATOR_KEY}` },
        ...(payload ? { payload } : {}),
      });
      return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
    };
    const service = (tiers: object[]) => ({
      name: 'other',
      pathPrefix: '/other/',
      upstream: upstreamUrl,
      mode: 'paid',
      models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '1' } },
      creditMsat: '1000',
      routing: { tiers },
    });
    const unordered = await admin(
      'POST',
      '/v1/proxy/services',
      service([
        { name: 'low', minBalanceMsat: '10' },
        { name: 'high', minBalanceMsat: '1000' },
      ]),
    );
    expect(unordered.status).toBe(400);
    expect(unordered.body).toMatchObject({ error: { code: 'INVALID_ROUTING' } });
    const emptyModel = await admin(
      'POST',
      '/v1/proxy/services',
      service([{ name: 'low', minBalanceMsat: '10', models: { big: '' } }]),
    );
    expect(emptyModel.status).toBe(400);
    expect((await admin('GET', '/v1/proxy/services/llm')).body).toMatchObject({ routing });
    const discovery = (await (await fetch(`${s.proxy.url}/.well-known/l402.json`)).json()) as {
      services: { name: string; routing?: unknown }[];
    };
    expect(discovery.services.find((x) => x.name === 'llm')?.routing).toEqual({
      tiers: [
        { name: 'normal', minBalanceMsat: '500000', models: {} },
        { name: 'low', minBalanceMsat: '100000', models: { 'sample-large': 'sample-small' } },
      ],
    });
  });
});
