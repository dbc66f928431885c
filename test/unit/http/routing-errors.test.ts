import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'routing-errors-operator-key-0123456789abcdef';
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

/** `{ error: { code, message } }` and nothing else at the top. */
function expectEnvelope(body: unknown, code: string): void {
  expect(body).toEqual({ error: { code, message: expect.any(String) } });
}

describe('ids, URL errors and methods', () => {
  it('takes ids up to the 128 characters the schema allows, then refuses with the error envelope', async () => {
    for (const n of [101, 128]) {
      const res = await app.inject({ url: `/v1/accounts/${'a'.repeat(n)}`, headers: op });
      expect(res.statusCode).toBe(404);
      expectEnvelope(res.json(), 'ACCOUNT_NOT_FOUND');
    }
    const over = await app.inject({ url: `/v1/accounts/${'a'.repeat(129)}`, headers: op });
    expect(over.statusCode).toBe(400);
    expectEnvelope(over.json(), 'VALIDATION_FAILED');
    const huge = await app.inject({ url: `/v1/accounts/${'a'.repeat(5000)}`, headers: op });
    expect(huge.statusCode).toBe(414);
    expectEnvelope(huge.json(), 'URI_TOO_LONG');
  });

  it('answers a malformed percent-encoding with 400 in the error envelope', async () => {
    const res = await app.inject({ url: '/v1/accounts/%FF', headers: op });
    expect(res.statusCode).toBe(400);
    expectEnvelope(res.json(), 'BAD_URL');
  });

  it('refuses . and .. (and other dot-led names) as account ids, at the API and in the ledger', async () => {
    for (const id of ['.', '..', '.hidden']) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/accounts',
        headers: op,
        payload: { id, kind: 'agent', name: 'x' },
      });
      expect(res.statusCode).toBe(400);
      expect(await f.ledger.getAccount(id)).toBeUndefined();
      expect(() => f.ledger.createAccount({ id, kind: 'agent', name: 'x' })).toThrow(
        expect.objectContaining({ code: 'INVALID_ACCOUNT_ID', status: 400 }),
      );
    }
    expect(() => f.ledger.createAccount({ id: 'a!b', kind: 'agent', name: 'x' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ACCOUNT_ID' }),
    );
    const ok = await app.inject({
      method: 'POST',
      url: '/v1/accounts',
      headers: op,
      payload: { id: 'a.b_c-1', kind: 'agent', name: 'x' },
    });
    expect(ok.statusCode).toBe(201);
  });

  it('answers 405 with Allow for a known path and an undeclared method, 404 for an unknown path', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/v1/accounts', headers: op });
    expect(res.statusCode).toBe(405);
    expect(res.headers['allow']).toBe('GET, HEAD, POST');
    expectEnvelope(res.json(), 'METHOD_NOT_ALLOWED');
    const param = await app.inject({ method: 'PATCH', url: '/v1/accounts/bob/policy', headers: op });
    expect(param.statusCode).toBe(405);
    expect(param.headers['allow']).toBe('GET, HEAD, PUT');
    const none = await app.inject({ method: 'GET', url: '/v1/nope', headers: op });
    expect(none.statusCode).toBe(404);
    expectEnvelope(none.json(), 'NOT_FOUND');
  });
});
