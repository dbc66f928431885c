import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { xOnlyOf } from '../../../src/devices/envelope.js';
import { SEEN_WRITE_MS } from '../../../src/devices/registry.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { featureServices } from '../../support/features-fixture.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';
import { checkResponses } from '../../support/response-check.js';

const OP = 'operator-lists-operator-key-0123456789abcdef';
const op = { authorization: `Bearer ${OP}` };
let now = 1_700_000_000_000;
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let features: Awaited<ReturnType<typeof featureServices>>;
let problems: string[];

beforeAll(async () => {
  f = await paymentsFixture({ now: () => now });
  features = await featureServices(f, { gatewayKey: '88'.repeat(32), now: () => now });
  app = await accountsApp(f, OP, features.accountServices);
  problems = checkResponses(app);
});
afterAll(async () => {
  await features.stop();
  f.service.stop();
  await app.close();
});

async function call(
  method: 'GET' | 'POST' | 'PUT',
  url: string,
  payload?: object,
  headers: Record<string, string> = op,
) {
  const res = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
}
const ids = (body: Record<string, unknown>, field = 'accounts') =>
  (body[field] as { id?: string; deviceId?: string }[]).map((x) => x.id ?? x.deviceId);

describe('operator lists of the console', () => {
  it('search accounts by name or id prefix, paged with a cursor', async () => {
    for (const [id, name] of [
      ['cafe-1', 'Coffee Shop'],
      ['cafe-2', 'coffee cart'],
      ['cafe-3', 'Tea room'],
      ['bakery', 'Coffee & bread'],
    ])
      expect((await call('POST', '/v1/accounts', { id, kind: 'agent', name })).status).toBe(201);
    const first = await call('GET', '/v1/accounts?by=name&prefix=COFFEE&limit=2');
    expect(first.status).toBe(200);
    expect(ids(first.body)).toEqual(['bakery', 'cafe-2']);
    const next = first.body['next'] as string;
    const second = await call(
      'GET',
      `/v1/accounts?by=name&prefix=COFFEE&limit=2&after=${encodeURIComponent(next)}`,
    );
    expect(ids(second.body)).toEqual(['cafe-1']);
    expect(second.body['next']).toBeUndefined();
    expect(ids((await call('GET', '/v1/accounts?prefix=cafe-&limit=10')).body)).toEqual([
      'cafe-1',
      'cafe-2',
      'cafe-3',
    ]);
    expect(ids((await call('GET', '/v1/accounts?prefix=zz')).body)).toEqual([]);
    // Bad input is a 400 with a stable code; the list is the operator's only.
    expect((await call('GET', '/v1/accounts?by=colour&prefix=a')).status).toBe(400);
    const both = await call('GET', '/v1/accounts?prefix=a&frozen=true');
    expect([both.status, (both.body['error'] as { code: string }).code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect((await call('GET', '/v1/accounts?prefix=cafe', undefined, {})).status).toBe(401);
  });

  it('list the frozen accounts and raise alerts for them, for approvals waiting, low coverage and LND down', async () => {
    expect((await call('GET', '/v1/alerts')).body).toEqual({
      alerts: [],
      lightning: 'connected',
      coverage: expect.any(String) as string,
      frozenAccounts: 0,
      approvalsWaiting: 0,
    });
    expect((await call('POST', '/v1/accounts/cafe-2/freeze')).status).toBe(200);
    expect((await call('POST', '/v1/accounts/cafe-3/freeze')).status).toBe(200);
    expect(ids((await call('GET', '/v1/accounts?frozen=true')).body)).toEqual(['cafe-2', 'cafe-3']);
    const page = await call('GET', '/v1/accounts?frozen=true&limit=1');
    expect(page.body['next']).toBe('cafe-2');
    expect(ids((await call('GET', '/v1/accounts?frozen=true&after=cafe-2')).body)).toEqual(['cafe-3']);

    // A payment waiting for approval, and more owed than the node holds (10^12 msat).
    await f.account('big', 2n * 10n ** 12n, {
      rules: [{ type: 'approval_above', thresholdMsat: msat(1n) }],
    });
    const held = await call('POST', '/v1/accounts/big/payments', {
      request: fakeRequest({ amountMsat: 5000n }).request,
    });
    expect(held.body['status']).toBe('awaiting_approval');
    const alerts = await call('GET', '/v1/alerts');
    expect(alerts.body['frozenAccounts']).toBe(2);
    expect(alerts.body['approvalsWaiting']).toBe(1);
    expect(
      (alerts.body['alerts'] as { code: string; count?: number }[]).map((a) => [a.code, a.count]),
    ).toEqual([
      ['COVERAGE_LOW', undefined],
      ['ACCOUNTS_FROZEN', 2],
      ['APPROVALS_WAITING', 1],
    ]);

    expect((await call('POST', '/v1/accounts/cafe-3/unfreeze')).status).toBe(200);
    f.lightning.connectionState = 'disconnected';
    try {
      const down = await call('GET', '/v1/alerts');
      expect(down.body['lightning']).toBe('disconnected');
      expect(down.body['coverage']).toBeUndefined();
      expect((down.body['alerts'] as { code: string }[]).map((a) => a.code)).toEqual([
        'LND_DISCONNECTED',
        'ACCOUNTS_FROZEN',
        'APPROVALS_WAITING',
      ]);
    } finally {
      f.lightning.connectionState = 'connected';
    }
  });

  it("lists every account's payments, newest first, paged", async () => {
    await f.account('payer', 1_000_000n);
    for (const amountMsat of [1000n, 2000n, 3000n]) {
      now += 1000;
      const r = await call('POST', '/v1/accounts/payer/payments', {
        request: fakeRequest({ amountMsat }).request,
      });
      expect([201, 202]).toContain(r.status);
    }
    const first = await call('GET', '/v1/payments?limit=2');
    expect(first.status).toBe(200);
    const rows = first.body['payments'] as { accountId: string; amountMsat: string; paymentHash: string }[];
    expect(rows.map((p) => [p.accountId, p.amountMsat])).toEqual([
      ['payer', '3000'],
      ['payer', '2000'],
    ]);
    const rest = await call(
      'GET',
      `/v1/payments?limit=10&cursor=${encodeURIComponent(first.body['nextCursor'] as string)}`,
    );
    const more = rest.body['payments'] as { accountId: string; amountMsat: string }[];
    expect(more.map((p) => [p.accountId, p.amountMsat])).toEqual([
      ['payer', '1000'],
      ['big', '5000'],
    ]);
    expect((await call('GET', '/v1/payments?cursor=not-a-cursor')).status).toBe(400);
  });

  it('lists devices a page at a time: online now, last seen (written at a bounded rate), requests', async () => {
    await f.account('dev-owner', 0n);
    const keys = ['31', '32', '33'].map((b) => xOnlyOf(b.repeat(32)));
    for (const [i, deviceId] of keys.entries())
      expect(
        (await call('POST', '/v1/devices', { deviceId, accountId: 'dev-owner', name: `d${i}` })).status,
      ).toBe(201);
    const sorted = [...keys].sort();
    const first = await call('GET', '/v1/devices?limit=2');
    expect(ids(first.body, 'devices')).toEqual(sorted.slice(0, 2));
    expect(first.body['next']).toBe(sorted[1]);
    const second = await call('GET', `/v1/devices?limit=2&after=${sorted[1]!}`);
    expect(ids(second.body, 'devices')).toEqual(sorted.slice(2));
    expect(second.body['next']).toBeUndefined();

    const registry = features.devices;
    const id = sorted[0]!;
    registry.connection(id, true);
    await registry.seen(id);
    const seenAt = now;
    // Heard from again within the minute: nothing is written.
    const writes = f.store.commits;
    now += SEEN_WRITE_MS - 1;
    await registry.seen(id);
    await f.ledger.flush();
    expect(f.store.commits).toBe(writes);
    now += 1;
    const device = async () =>
      ((await call('GET', '/v1/devices?limit=1')).body['devices'] as Record<string, unknown>[])[0]!;
    expect(await device()).toMatchObject({
      deviceId: id,
      online: true,
      lastSeenAt: seenAt,
      requestsSinceStart: 0,
    });
    await registry.seen(id);
    expect(f.store.commits).toBeGreaterThan(writes);
    expect((await device())['lastSeenAt']).toBe(now);
    await registry.acceptCounter(id, 1).durable;
    expect(await device()).toMatchObject({ lastCounter: 1, requestsSinceStart: 1, lastSeenAt: now });
    registry.connection(id, false);
    expect((await device())['online']).toBe(false);
    expect((await call('POST', `/v1/devices/${id}/revoke`)).status).toBe(200);
    expect((await device())['state']).toBe('revoked');
  });

  it('answer what their response schemas declare', () => {
    expect(problems).toEqual([]);
  });
});
