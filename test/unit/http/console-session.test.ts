import { afterAll, describe, expect, it } from 'vitest';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { ConsoleSessions } from '../../../src/http/console-session.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import { fakeBackend } from '../../support/fake-backend.js';
import { MemoryRecords } from '../../support/memory-records.js';

const key = OperatorAuth.generateKey();
const apps: CoulombApp[] = [];
let now = 1_000_000;

async function app(sessions = new ConsoleSessions({ now: () => now })): Promise<CoulombApp> {
  const a = await buildApp({
    backend: fakeBackend({ state: 'connected' }),
    operatorAuth: OperatorAuth.fromKey(key),
    consoleSessions: sessions,
  });
  // A state-changing operator route, to see the CSRF rules at work.
  a.post('/v1/test/change', async () => ({ changed: true }));
  apps.push(a);
  return a;
}
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

async function login(a: CoulombApp): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await a.inject({ method: 'POST', url: '/console/api/login', payload: { key } });
  expect(res.statusCode).toBe(200);
  const setCookie = String(res.headers['set-cookie']);
  return {
    cookie: setCookie.split(';')[0]!,
    csrf: res.json<{ csrfToken: string }>().csrfToken,
    setCookie,
  };
}

describe('console sessions', () => {
  it('exchange the operator key for an HttpOnly, SameSite=Strict cookie; a wrong key gets nothing', async () => {
    const a = await app();
    const bad = await a.inject({ method: 'POST', url: '/console/api/login', payload: { key: key + 'x' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.headers['set-cookie']).toBeUndefined();
    const { cookie, setCookie } = await login(a);
    expect(setCookie).toMatch(
      /^coulomb_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=28800$/,
    );
    expect(setCookie).not.toContain(key);
    const node = await a.inject({ url: '/v1/node', headers: { cookie } });
    expect(node.statusCode).toBe(200);
    expect(
      (await a.inject({ url: '/v1/node', headers: { cookie: 'coulomb_session=forged' } })).statusCode,
    ).toBe(401);
  });

  it('refuse a state-changing request without the CSRF token or from another origin', async () => {
    const a = await app();
    const { cookie, csrf } = await login(a);
    const post = (headers: Record<string, string>) =>
      a.inject({ method: 'POST', url: '/v1/test/change', headers: { cookie, ...headers } });
    expect((await post({})).json()).toMatchObject({ error: { code: 'CSRF_REJECTED' } });
    expect((await post({ 'x-csrf-token': csrf.slice(1) + 'A' })).statusCode).toBe(403);
    expect((await post({ 'x-csrf-token': csrf, origin: 'https://evil.example' })).statusCode).toBe(403);
    expect((await post({ 'x-csrf-token': csrf })).statusCode).toBe(200);
    expect((await post({ 'x-csrf-token': csrf, origin: 'http://localhost:80' })).statusCode).toBe(200);
  });

  it('expire, end at logout, and stay bounded (the oldest goes)', async () => {
    const sessions = new ConsoleSessions({ now: () => now, max: 2, ttlMs: 60_000 });
    const a = await app(sessions);
    const first = await login(a);
    const session = await a.inject({ url: '/console/api/session', headers: { cookie: first.cookie } });
    expect(session.json()).toEqual({ csrfToken: first.csrf, expiresAt: now + 60_000 });
    now += 60_000;
    expect((await a.inject({ url: '/v1/node', headers: { cookie: first.cookie } })).statusCode).toBe(401);

    const [s1, s2, s3] = [await login(a), await login(a), await login(a)];
    expect(sessions.size).toBe(2);
    expect((await a.inject({ url: '/v1/node', headers: { cookie: s1.cookie } })).statusCode).toBe(401);
    expect((await a.inject({ url: '/v1/node', headers: { cookie: s2.cookie } })).statusCode).toBe(200);
    const out = await a.inject({
      method: 'POST',
      url: '/console/api/logout',
      headers: { cookie: s3.cookie, 'x-csrf-token': s3.csrf },
    });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await a.inject({ url: '/v1/node', headers: { cookie: s3.cookie } })).statusCode).toBe(401);
  });

  it('on a shared store, work on every instance and end everywhere at logout', async () => {
    const store = new MemoryRecords();
    const one = await app(new ConsoleSessions({ now: () => now, store }));
    const two = await app(new ConsoleSessions({ now: () => now, store }));
    const s = await login(one);
    // Logged in through one instance, the next request reaches the other.
    expect((await two.inject({ url: '/v1/node', headers: { cookie: s.cookie } })).statusCode).toBe(200);
    const change = (on: CoulombApp) =>
      on.inject({
        method: 'POST',
        url: '/v1/test/change',
        headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
      });
    expect((await change(two)).statusCode).toBe(200);
    const out = await one.inject({
      method: 'POST',
      url: '/console/api/logout',
      headers: { cookie: s.cookie, 'x-csrf-token': s.csrf },
    });
    expect(out.statusCode).toBe(200);
    // The other instance trusts what it read for a second, then reads the session is gone.
    now += 1000;
    expect((await two.inject({ url: '/v1/node', headers: { cookie: s.cookie } })).statusCode).toBe(401);
    expect((await store.listRecords('csess!')).length).toBe(0);
  });

  it('limit login attempts per source address with a stable 429 code', async () => {
    const a = await app();
    const attempt = (k: string, remoteAddress = '10.0.0.1') =>
      a.inject({ method: 'POST', url: '/console/api/login', payload: { key: k }, remoteAddress });
    for (let i = 0; i < 10; i++) expect((await attempt('wrong-key')).statusCode).toBe(401);
    // Even the right key waits: the attempts of this address are spent.
    const limited = await attempt(key);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ error: { code: 'LOGIN_RATE_LIMITED' } });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers['set-cookie']).toBeUndefined();
    // Another address is not held back; this one gets an attempt back as time passes.
    expect((await attempt(key, '10.0.0.2')).statusCode).toBe(200);
    now += 6_000;
    expect((await attempt(key)).statusCode).toBe(200);
  });
});
