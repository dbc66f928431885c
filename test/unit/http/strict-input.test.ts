import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'strict-input-operator-key-0123456789abcdef';
const op = { authorization: `Bearer ${OP}` };
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;

beforeAll(async () => {
  f = await paymentsFixture();
  app = await accountsApp(f, OP);
  await f.account('alice', 1_000_000n);
});
afterAll(async () => {
  f.service.stop();
  await app.close();
});

const post = (url: string, payload: unknown) =>
  app.inject({ method: 'POST', url, headers: op, payload: payload as Record<string, unknown> });

describe('amounts are decimal strings only, no type coercion', () => {
  it('refuses a JSON number amount with INVALID_AMOUNT instead of rounding it', async () => {
    // The exact bytes a client sends: a JSON number no double holds (JSON.parse reads 9007199254740992).
    const res = await app.inject({
      method: 'POST',
      url: '/v1/accounts/alice/invoices',
      headers: { ...op, 'content-type': 'application/json' },
      payload: '{"amountMsat": 9007199254740993}',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('INVALID_AMOUNT');
    expect(f.lightning.invoices.size).toBe(0);
    const fund = await post('/v1/accounts/alice/fund', { amountMsat: 1000 });
    expect(fund.statusCode).toBe(400);
    expect(fund.json().error.code).toBe('INVALID_AMOUNT');
  });

  it('refuses arrays, null and booleans in string fields', async () => {
    for (const amountMsat of [['1'], null, [false], true]) {
      const res = await post('/v1/accounts/alice/invoices', { amountMsat });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_AMOUNT');
    }
    for (const name of [['bob'], null, [false], 7]) {
      const res = await post('/v1/accounts', { kind: 'agent', name });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    }
    const desc = await post('/v1/accounts/alice/invoices', { amountMsat: '1000', description: null });
    expect(desc.statusCode).toBe(400);
    const int = await post('/v1/accounts/alice/invoices', { amountMsat: '1000', expirySeconds: '3600' });
    expect(int.statusCode).toBe(400);
    expect(f.lightning.invoices.size).toBe(0);
  });

  it('still reads integers from the query string, canonical ones only', async () => {
    const ok = await app.inject({ url: '/v1/accounts/alice/payments?limit=5', headers: op });
    expect(ok.statusCode).toBe(200);
    for (const limit of ['abc', '1e1', '05', '5.0', '']) {
      const bad = await app.inject({ url: `/v1/accounts/alice/payments?limit=${limit}`, headers: op });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error.code).toBe('VALIDATION_FAILED');
    }
  });
});

describe('policy amounts stay exact', () => {
  const put = (rules: unknown[]) =>
    app.inject({ method: 'PUT', url: '/v1/accounts/alice/policy', headers: op, payload: { rules } });

  it('refuses a count limit no integer can hold exactly instead of echoing a float', async () => {
    const res = await put([{ type: 'max_in_flight', max: 6.6e31 }]);
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain('e+31');
    expect((await put([{ type: 'max_per_minute', max: 2 ** 53 }])).statusCode).toBe(400);
  });

  it('refuses numeric rule amounts and keeps string ones exact end to end', async () => {
    const num = await put([{ type: 'max_per_payment', maxMsat: 6.6e31 }]);
    expect(num.statusCode).toBe(400);
    expect(num.json().error.code).toBe('INVALID_AMOUNT');
    const tooBig = await put([
      { type: 'budget', window: 'day', maxMsat: '66000000000000000000000000000000' },
    ]);
    expect(tooBig.statusCode).toBe(400);
    expect(tooBig.json().error.code).toBe('INVALID_AMOUNT');
    const exact = await put([
      { type: 'max_per_payment', maxMsat: '2099999999999999999' },
      { type: 'max_in_flight', max: 1000 },
    ]);
    expect(exact.statusCode).toBe(200);
    expect(exact.json().rules[0]).toEqual({ type: 'max_per_payment', maxMsat: '2099999999999999999' });
    const read = await app.inject({ url: '/v1/accounts/alice/policy', headers: op });
    expect(read.json().rules[0].maxMsat).toBe('2099999999999999999');
    expect(f.policies.get('alice')?.rules[0]).toEqual({
      type: 'max_per_payment',
      maxMsat: 2099999999999999999n,
    });
  });
});
