import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'operator-key-for-tests-0123456789abcdef';
const op = { authorization: `Bearer ${OP}` };
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;

beforeAll(async () => {
  f = await paymentsFixture();
  app = await accountsApp(f, OP);
});
afterAll(async () => {
  f.service.stop();
  await app.close();
});

async function createAccount(id: string, tier = 'L2') {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/accounts',
    headers: op,
    payload: { id, kind: 'agent', name: id, tier },
  });
  expect(res.statusCode).toBe(201);
  return res.json();
}

async function key(accountId: string, scopes: string[], auth = op) {
  const res = await app.inject({
    method: 'POST',
    url: `/v1/accounts/${accountId}/keys`,
    headers: auth,
    payload: { scopes },
  });
  return res;
}

describe('accounts API', () => {
  it('creates, funds and shows an account with exact msat strings', async () => {
    const a = await createAccount('alice-bot');
    expect(a).toMatchObject({ id: 'alice-bot', kind: 'agent', balanceMsat: '0', tier: 'L2' });
    const funded = await app.inject({
      method: 'POST',
      url: '/v1/accounts/alice-bot/fund',
      headers: op,
      payload: { amountMsat: '123456789012345678' },
    });
    expect(funded.json()).toMatchObject({
      balanceMsat: '123456789012345678',
      availableMsat: '123456789012345678',
    });
  });

  it('new accounts are view-only until a tier is granted (deny by default)', async () => {
    await createAccount('viewer', 'L0');
    await app.inject({
      method: 'POST',
      url: '/v1/accounts/viewer/fund',
      headers: op,
      payload: { amountMsat: '100000' },
    });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/accounts/viewer/payments',
      headers: op,
      payload: { request: fakeRequest({ amountMsat: 1000n }).request },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({ code: 'SPENDING_DISABLED', details: { retryable: false } });
  });

  it('lets keys act only on their own account and within their scopes', async () => {
    await createAccount('k1');
    await createAccount('k2');
    const read = (await key('k1', ['read'])).json().key as string;
    expect(read).toMatch(/^ck_[0-9a-f]{16}_/);
    const auth = { authorization: `Bearer ${read}` };
    expect((await app.inject({ url: '/v1/accounts/k1', headers: auth })).statusCode).toBe(200);
    expect((await app.inject({ url: '/v1/accounts/k2', headers: auth })).statusCode).toBe(403);
    expect((await app.inject({ url: '/v1/accounts', headers: auth })).statusCode).toBe(403);
    const pay = await app.inject({
      method: 'POST',
      url: '/v1/accounts/k1/payments',
      headers: auth,
      payload: { request: fakeRequest({ amountMsat: 1n }).request },
    });
    expect(pay.statusCode).toBe(403);
    expect(pay.json().error.message).toMatch(/lacks the pay scope/);
    expect(
      (
        await app.inject({
          url: '/v1/accounts/k1',
          headers: { authorization: `Bearer ${read.slice(0, -1)}x` },
        })
      ).statusCode,
    ).toBe(401);
  });

  it('never lets a key create a key more powerful or longer-lived than itself', async () => {
    await createAccount('k3');
    const admin = (await key('k3', ['admin'])).json().key as string;
    const adminAuth = { authorization: `Bearer ${admin}` };
    const pay = await key('k3', ['pay'], adminAuth);
    expect(pay.statusCode).toBe(201);
    const payAuth = { authorization: `Bearer ${pay.json().key}` };
    expect((await key('k3', ['read'], payAuth)).statusCode).toBe(403); // creating keys needs admin
    const limitedAdmin = await app.inject({
      method: 'POST',
      url: '/v1/accounts/k3/keys',
      headers: op,
      payload: { scopes: ['admin'], expiresInSeconds: 60 },
    });
    const la = { authorization: `Bearer ${limitedAdmin.json().key}` };
    const forever = await key('k3', ['read'], la);
    expect(forever.statusCode).toBe(403);
    expect(forever.json().error.message).toMatch(/outlives/);
    const revoked = await app.inject({
      method: 'DELETE',
      url: `/v1/accounts/k3/keys/${pay.json().record.id}`,
      headers: adminAuth,
    });
    expect(revoked.json()).toHaveProperty('revokedAt');
    expect((await app.inject({ url: '/v1/accounts/k3', headers: payAuth })).statusCode).toBe(401);
    const listed = await app.inject({ url: '/v1/accounts/k3/keys', headers: adminAuth });
    expect(JSON.stringify(listed.json())).not.toMatch(/hash/);
  });

  it('pays through the API and reports the payment with exact amounts', async () => {
    await createAccount('payer');
    await app.inject({
      method: 'POST',
      url: '/v1/accounts/payer/fund',
      headers: op,
      payload: { amountMsat: '1000000' },
    });
    const res = await app.inject({
      method: 'POST',
      url: '/v1/accounts/payer/payments',
      headers: op,
      payload: { request: fakeRequest({ amountMsat: 50_000n }).request, maxFeeMsat: '5000' },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ status: 'succeeded', amountMsat: '50000', feeMsat: '1000' });
    const acct = await app.inject({ url: '/v1/accounts/payer', headers: op });
    expect(acct.json().balanceMsat).toBe('949000');
  });

  it.each([
    ['POST', '/v1/accounts', { kind: 'robot', name: 'x' }, 'VALIDATION_FAILED'],
    ['POST', '/v1/accounts/payer/fund', { amountMsat: '-5' }, 'INVALID_AMOUNT'],
    ['POST', '/v1/accounts/payer/fund', { amountMsat: '1.5' }, 'INVALID_AMOUNT'],
    ['POST', '/v1/accounts/nobody/fund', { amountMsat: '5' }, 'ACCOUNT_NOT_FOUND'],
    ['POST', '/v1/accounts/payer/payments', { request: 'lnbc1garbagegarbage' }, 'INVALID_INVOICE'],
    ['POST', '/v1/accounts/payer/payments', { request: 'x'.repeat(20), extra: 1 }, 'VALIDATION_FAILED'],
    ['POST', '/v1/accounts/payer/transfers', { toAccountId: 'payer', amountMsat: '1' }, 'SAME_ACCOUNT'],
    [
      'POST',
      '/v1/accounts/payer/transfers',
      { toAccountId: 'alice-bot', amountMsat: '5000000' },
      'INSUFFICIENT_FUNDS',
    ],
    ['PUT', '/v1/accounts/payer/policy', { rules: [{ type: 'max_per_payment' }] }, 'VALIDATION_FAILED'],
    ['POST', '/v1/approvals/nope/approve', undefined, 'APPROVAL_NOT_FOUND'],
  ])('%s %s with bad input is a 4xx %s and changes no balance', async (method, url, payload, code) => {
    const before = (await app.inject({ url: '/v1/accounts/payer', headers: op })).json();
    const res = await app.inject({
      method: method as 'POST',
      url,
      headers: op,
      ...(payload ? { payload } : {}),
    });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.json().error.code).toBe(code);
    expect((await app.inject({ url: '/v1/accounts/payer', headers: op })).json()).toEqual(before);
  });

  it('transfers internally within the policy, idempotently', async () => {
    const body = { toAccountId: 'alice-bot', amountMsat: '1000', idempotencyKey: 't-1' };
    const first = await app.inject({
      method: 'POST',
      url: '/v1/accounts/payer/transfers',
      headers: op,
      payload: body,
    });
    const again = await app.inject({
      method: 'POST',
      url: '/v1/accounts/payer/transfers',
      headers: op,
      payload: body,
    });
    expect(first.json()).toMatchObject({ replayed: false, account: { balanceMsat: '948000' } });
    expect(again.json()).toMatchObject({
      replayed: true,
      transferId: first.json().transferId,
      account: { balanceMsat: '948000' },
    });
  });

  it('streams live account events over SSE', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const ctl = new AbortController();
    const res = await fetch(`${url}/v1/accounts/alice-bot/events`, { headers: op, signal: ctl.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    await app.inject({
      method: 'POST',
      url: '/v1/accounts/payer/transfers',
      headers: op,
      payload: { toAccountId: 'alice-bot', amountMsat: '1' },
    });
    while (!text.includes('event: balance')) text += new TextDecoder().decode((await reader.read()).value);
    const data = JSON.parse(/event: balance\ndata: (.*)\n/.exec(text)![1]!);
    expect(data).toMatchObject({ type: 'balance', accountId: 'alice-bot' });
    ctl.abort();
  });

  it("streams every account's events but balances to the operator over SSE, and to no account key", async () => {
    await createAccount('feed-bot');
    const url = app.server.listening
      ? `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
      : await app.listen({ host: '127.0.0.1', port: 0 });
    const ctl = new AbortController();
    const res = await fetch(`${url}/v1/events`, { headers: op, signal: ctl.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes(': connected')) text += new TextDecoder().decode((await reader.read()).value);
    f.events.publish('feed-bot', {
      type: 'balance',
      accountId: 'feed-bot',
      balanceMsat: '1',
      availableMsat: '1',
    });
    f.events.publish('feed-bot', {
      type: 'alert',
      accountId: 'feed-bot',
      code: 'TEST_ALERT',
      message: 'hi',
    });
    while (!text.includes('event: alert')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).not.toContain('event: balance');
    expect(JSON.parse(/event: alert\ndata: (.*)\n/.exec(text)![1]!)).toEqual({
      accountId: 'feed-bot',
      type: 'alert',
      code: 'TEST_ALERT',
      message: 'hi',
    });
    ctl.abort();
    const k = (await key('feed-bot', ['read', 'admin'])).json<{ key: string }>().key;
    const denied = await app.inject({ url: '/v1/events', headers: { authorization: `Bearer ${k}` } });
    expect(denied.statusCode).toBe(403);
  });

  it('serves every route in the OpenAPI document', async () => {
    const doc = (await app.inject({ url: '/docs/json' })).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/accounts',
        '/v1/accounts/{id}/payments',
        '/v1/accounts/{id}/keys',
        '/v1/approvals',
        '/v1/accounts/{id}/audit',
        '/v1/liabilities',
      ]),
    );
  });

  it("the gateway's own accounts can be read but not changed through the account routes", async () => {
    const changes: [string, string, Record<string, unknown>][] = [
      ['PUT', '/v1/accounts/sys:lightning/policy', { tier: 'L3' }],
      ['POST', '/v1/accounts/sys:operator/keys', { scopes: ['pay'] }],
      ['POST', '/v1/accounts/sys:operator/freeze', {}],
    ];
    for (const [method, url, payload] of changes) {
      const res = await app.inject({ method: method as 'PUT' | 'POST', url, headers: op, payload });
      expect({ url, status: res.statusCode, code: res.json().error?.code }).toEqual({
        url,
        status: 400,
        code: 'INVALID_ARGUMENT',
      });
    }
    expect((await f.ledger.requireAccount('sys:operator')).frozen).toBe(false);
    const read = await app.inject({ method: 'GET', url: '/v1/accounts/sys:operator', headers: op });
    expect(read.statusCode).toBe(200);
  });
});
