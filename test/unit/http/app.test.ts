import { afterAll, describe, expect, it } from 'vitest';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import { fakeBackend } from '../../support/fake-backend.js';

const key = OperatorAuth.generateKey();
const apps: CoulombApp[] = [];
async function app(state: 'connected' | 'disconnected' = 'connected'): Promise<CoulombApp> {
  const a = await buildApp({ backend: fakeBackend({ state }), operatorAuth: OperatorAuth.fromKey(key) });
  apps.push(a);
  return a;
}
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

describe('http app', () => {
  it('serves /health without credentials and reports the node connection', async () => {
    const up = await (await app()).inject({ url: '/health' });
    expect(up.statusCode).toBe(200);
    expect(up.json()).toEqual({ status: 'ok', lightning: 'connected' });
    const down = await (await app('disconnected')).inject({ url: '/health' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: 'degraded', lightning: 'disconnected' });
  });

  it('protects node info: 401 without or with a wrong key', async () => {
    const a = await app();
    for (const authorization of [undefined, 'Bearer nope', `Basic ${key}`, `Bearer ${key}x`]) {
      const res = await a.inject({ url: '/v1/node', headers: authorization ? { authorization } : {} });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({
        error: { code: 'UNAUTHORIZED', message: 'missing or invalid credentials' },
      });
    }
  });

  it('returns node info and exact msat balances as strings to the operator', async () => {
    const a = await app();
    const info = await a.inject({ url: '/v1/node', headers: { authorization: `Bearer ${key}` } });
    expect(info.statusCode).toBe(200);
    expect(info.json()).toMatchObject({
      alias: 'fake',
      network: 'regtest',
      blockHeight: 123,
      capabilities: { holdInvoices: true },
    });
    const bal = await a.inject({ url: '/v1/node/balances', headers: { authorization: `Bearer ${key}` } });
    expect(bal.json()).toMatchObject({ channelLocalMsat: '5000000000', channelRemoteMsat: '5000000001' });
  });

  it('answers unknown routes with a JSON 404, not a 401 or 500', async () => {
    const res = await (await app()).inject({ url: '/nope' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('NOT_FOUND');
  });

  it('publishes the OpenAPI document from the route schemas', async () => {
    const res = await (await app()).inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/health', '/v1/node', '/v1/node/balances']),
    );
    expect(doc.components.securitySchemes.operator).toMatchObject({ type: 'http', scheme: 'bearer' });
  });
});

describe('OperatorAuth', () => {
  it('verifies only the exact key, from the key or its stored digest', () => {
    const k = OperatorAuth.generateKey();
    const a = OperatorAuth.fromKey(k);
    const b = OperatorAuth.fromDigestHex(a.digestHex);
    expect(a.verify(k) && b.verify(k)).toBe(true);
    expect(b.verify(k.slice(0, -1))).toBe(false);
    expect(b.verify(undefined)).toBe(false);
    expect(a.digestHex).not.toContain(k);
  });
});
