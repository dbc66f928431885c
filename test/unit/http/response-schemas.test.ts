import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollDigest, schnorrSign, signRequest, xOnlyOf } from '../../../src/devices/envelope.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { featureServices } from '../../support/features-fixture.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';
import { checkResponses } from '../../support/response-check.js';

const OP = 'response-schemas-operator-key-0123456789abcdef';
const op = { authorization: `Bearer ${OP}` };
const GATEWAY_KEY = '88'.repeat(32);
const DEVICE_KEY = '77'.repeat(32);
const ENROLLED_KEY = '66'.repeat(32);
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let problems: string[];
let stopAll: () => Promise<void>;

beforeAll(async () => {
  f = await paymentsFixture();
  const features = await featureServices(f, { gatewayKey: GATEWAY_KEY });
  app = await accountsApp(f, OP, features.accountServices);
  problems = checkResponses(app);
  stopAll = async () => {
    await features.stop();
    f.service.stop();
    await app.close();
  };
});
afterAll(() => stopAll());

async function call(method: string, url: string, payload?: unknown, headers: Record<string, string> = op) {
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers,
    ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
  });
  return { status: res.statusCode, body: res.body ? (res.json() as Record<string, unknown>) : {} };
}

describe('response schemas', () => {
  it('declare a typed 2xx body for every operation of the OpenAPI document (no free-form objects)', async () => {
    const doc = (await call('GET', '/docs/json')).body as {
      paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    };
    const untyped: string[] = [];
    const walk = (where: string, s: unknown): void => {
      if (!s || typeof s !== 'object') return;
      const o = s as Record<string, unknown>;
      if (o['type'] === 'object' && !o['properties']) {
        const extra = o['additionalProperties'] as Record<string, unknown> | boolean | undefined;
        const pattern = Object.values((o['patternProperties'] as Record<string, unknown>) ?? {});
        const typed =
          (typeof extra === 'object' && extra['type'] !== undefined) ||
          (pattern.length > 0 && pattern.every((p) => (p as Record<string, unknown>)['type'] !== undefined));
        if (!typed) untyped.push(where);
      }
      for (const [k, v] of Object.entries(o)) walk(`${where}.${k}`, v);
    };
    for (const [path, ops] of Object.entries(doc.paths)) {
      if (path.startsWith('/docs')) continue;
      for (const [method, o] of Object.entries(ops)) {
        const ok = Object.entries(o.responses ?? {}).filter(([code]) => code.startsWith('2'));
        if (ok.length === 0) untyped.push(`${method} ${path}: no 2xx response`);
        for (const [code, r] of ok) walk(`${method} ${path} ${code}`, r);
      }
    }
    expect(untyped).toEqual([]);
  });

  it('match what every route really answers, field for field', async () => {
    // Accounts, policy, keys.
    for (const id of ['buyer', 'seller'])
      expect((await call('POST', '/v1/accounts', { id, kind: 'agent', name: id, tier: 'L2' })).status).toBe(
        201,
      );
    expect((await call('GET', '/v1/accounts')).status).toBe(200);
    expect((await call('POST', '/v1/accounts/buyer/fund', { amountMsat: '50000000' })).status).toBe(200);
    expect((await call('GET', '/v1/accounts/sys:operator')).body['balanceMsat']).toMatch(/^-/);
    expect((await call('POST', '/v1/accounts/seller/freeze', { reason: 'check' })).status).toBe(200);
    expect((await call('POST', '/v1/accounts/seller/unfreeze')).status).toBe(200);
    expect((await call('GET', '/v1/accounts/buyer/history?limit=10')).status).toBe(200);
    expect((await call('GET', '/v1/accounts/buyer/policy')).status).toBe(200);
    const key = await call('POST', '/v1/accounts/buyer/keys', { scopes: ['read'], expiresInSeconds: 600 });
    expect(key.status).toBe(201);
    expect((await call('GET', '/v1/accounts/buyer/keys')).status).toBe(200);
    const keyId = (key.body['record'] as { id: string }).id;
    expect((await call('DELETE', `/v1/accounts/buyer/keys/${keyId}`)).status).toBe(200);

    // Invoices, payments, transfers, operations.
    const inv = await call('POST', '/v1/accounts/seller/invoices', { amountMsat: '1000', description: 'x' });
    expect(inv.status).toBe(201);
    expect(
      (await call('GET', `/v1/accounts/seller/invoices/${inv.body['paymentHash'] as string}`)).status,
    ).toBe(200);
    const internal = await call('POST', '/v1/accounts/buyer/payments', { request: inv.body['request'] });
    expect(internal.status).toBe(201);
    const external = await call('POST', '/v1/accounts/buyer/payments', {
      request: fakeRequest({ amountMsat: 2000n }).request,
      idempotencyKey: 'ext-1',
    });
    expect([201, 202]).toContain(external.status);
    const keysend = await call('POST', '/v1/accounts/buyer/payments', {
      keysend: {
        destination: '03' + '22'.repeat(32),
        amountMsat: '1000',
        records: [{ type: '7629169', value: 'ab' }],
      },
    });
    expect([201, 202]).toContain(keysend.status);
    expect((await call('GET', '/v1/accounts/buyer/payments')).status).toBe(200);
    expect((await call('GET', `/v1/accounts/buyer/payments/${external.body['id'] as string}`)).status).toBe(
      200,
    );
    const transfer = await call('POST', '/v1/accounts/buyer/transfers', {
      toAccountId: 'seller',
      amountMsat: '1000',
      memo: 'm',
    });
    expect(transfer.status).toBe(201);
    expect((await call('GET', '/v1/accounts/buyer/audit')).status).toBe(200);
    expect((await call('GET', '/v1/liabilities')).status).toBe(200);
    expect((await call('POST', '/v1/reconcile')).status).toBe(200);
    expect((await call('GET', '/v1/approvals')).status).toBe(200);
    expect((await call('GET', '/v1/node')).status).toBe(200);
    expect((await call('GET', '/v1/node/balances')).status).toBe(200);

    // Escrow.
    const e = await call('POST', '/v1/accounts/buyer/escrows', {
      payeeAccountId: 'seller',
      amountMsat: '5000',
      condition: { type: 'approval' },
      funding: 'account',
    });
    expect(e.status).toBe(201);
    const escrowId = e.body['id'] as string;
    expect((await call('GET', '/v1/accounts/buyer/escrows')).status).toBe(200);
    expect((await call('GET', `/v1/accounts/buyer/escrows/${escrowId}`)).status).toBe(200);
    expect((await call('POST', `/v1/accounts/buyer/escrows/${escrowId}/approve`, {})).status).toBe(200);
    // (The fake Lightning backend has no hold invoices: escrows funded over Lightning are not made here.)
    const other = await call('POST', '/v1/accounts/buyer/escrows', {
      payeeAccountId: 'seller',
      amountMsat: '5000',
      condition: { type: 'receipt' },
      funding: 'account',
    });
    expect(other.status).toBe(201);
    expect((await call('POST', `/v1/escrows/${other.body['id'] as string}/refund`)).status).toBe(200);
    expect((await call('GET', '/v1/escrows?limit=5')).status).toBe(200);
    expect(
      (await call('POST', '/v1/accounts/seller/receipt-keys', { pubkey: xOnlyOf(DEVICE_KEY) })).status,
    ).toBe(201);
    expect((await call('GET', '/v1/accounts/seller/receipt-keys')).status).toBe(200);

    // Market and registry.
    const offer = await call('POST', '/v1/accounts/seller/offers', {
      title: 'labels',
      capabilities: ['vision'],
      priceMsat: '1000',
      unit: 'task',
      endpoint: 'https://example.com',
    });
    expect(offer.status).toBe(201);
    expect((await call('GET', '/v1/accounts/buyer/registry?capability=vision')).status).toBe(200);
    const task = await call('POST', '/v1/accounts/buyer/tasks', {
      title: 'label',
      capabilities: ['vision'],
      rewardMsat: '10000',
      deadlineSeconds: 3600,
    });
    expect(task.status).toBe(201);
    const taskId = task.body['id'] as string;
    expect((await call('GET', '/v1/accounts/seller/tasks?state=open&mine=false')).status).toBe(200);
    expect((await call('POST', `/v1/accounts/seller/tasks/${taskId}/claim`, {})).status).toBe(200);
    expect(
      (await call('POST', `/v1/accounts/seller/tasks/${taskId}/submit`, { result: 'done' })).status,
    ).toBe(200);
    expect((await call('POST', `/v1/accounts/buyer/tasks/${taskId}/accept`, {})).status).toBe(200);
    expect((await call('GET', '/v1/accounts/buyer/reputation/seller')).status).toBe(200);
    const disputed = await call('POST', '/v1/accounts/buyer/tasks', {
      title: 'label again',
      rewardMsat: '1000',
      deadlineSeconds: 3600,
    });
    const d = disputed.body['id'] as string;
    await call('POST', `/v1/accounts/seller/tasks/${d}/claim`, {});
    await call('POST', `/v1/accounts/seller/tasks/${d}/submit`, { result: 'meh' });
    expect((await call('POST', `/v1/accounts/buyer/tasks/${d}/reject`, { reason: 'bad' })).status).toBe(200);
    expect((await call('POST', `/v1/tasks/${d}/resolve`, { winner: 'agent' })).status).toBe(200);
    expect((await call('DELETE', `/v1/accounts/seller/offers/${offer.body['id'] as string}`)).status).toBe(
      204,
    );

    // Streams.
    const st = await call('POST', '/v1/accounts/buyer/streams', {
      payee: { accountId: 'seller' },
      rateMsat: '1000',
      maxTotalMsat: '100000',
      memo: 'm',
    });
    expect(st.status).toBe(201);
    const sid = st.body['id'] as string;
    expect((await call('GET', '/v1/accounts/buyer/streams')).status).toBe(200);
    expect((await call('GET', `/v1/accounts/seller/streams/${sid}`)).status).toBe(200);
    expect((await call('POST', `/v1/accounts/buyer/streams/${sid}/pause`)).status).toBe(200);
    expect((await call('POST', `/v1/accounts/buyer/streams/${sid}/resume`)).status).toBe(200);
    expect((await call('POST', `/v1/accounts/buyer/streams/${sid}/stop`)).status).toBe(200);
    const metered = await call('POST', '/v1/accounts/buyer/streams', {
      payee: { accountId: 'seller' },
      priceMsatPerUnit: '10',
    });
    expect(metered.status).toBe(201);
    const usage = await call('POST', `/v1/accounts/seller/streams/${metered.body['id'] as string}/usage`, {
      units: 3,
    });
    expect(usage.status).toBe(200);
    expect(usage.body['units']).toBe('3');
    const page1 = await call('GET', '/v1/accounts/seller/streams?limit=1');
    expect(page1.status).toBe(200);
    const next = page1.body['next'] as string;
    const page2 = await call('GET', `/v1/accounts/seller/streams?limit=1&before=${encodeURIComponent(next)}`);
    expect(page2.body['next']).toBeUndefined();
    const paged = [
      ...(page1.body['streams'] as { id: string }[]),
      ...(page2.body['streams'] as { id: string }[]),
    ];
    // Each stream once (two made in the same millisecond are ordered by id).
    expect(paged.map((x) => x.id).sort()).toEqual([metered.body['id'] as string, sid].sort());
    expect((await call('GET', '/v1/accounts/seller/streams?before=nope')).status).toBe(400);
    expect((await call('POST', '/v1/accounts/seller/stream-inboxes', { graceSeconds: 60 })).status).toBe(201);
    expect((await call('GET', '/v1/accounts/seller/incoming-streams')).status).toBe(200);

    // Devices.
    const deviceId = xOnlyOf(DEVICE_KEY);
    expect((await call('POST', '/v1/devices', { deviceId, accountId: 'seller', name: 'lamp' })).status).toBe(
      201,
    );
    expect((await call('GET', '/v1/devices?accountId=seller')).status).toBe(200);
    expect((await call('GET', '/v1/device/gateway')).status).toBe(200);
    // An actuation is a hold invoice (not in the fake backend): its refusals are checked here.
    const unknown = xOnlyOf('55'.repeat(32));
    const act = await call(
      'POST',
      `/v1/devices/${unknown}/actuations`,
      { command: 'on', priceMsat: '1' },
      {},
    );
    expect(act.status).toBe(401);
    expect((await call('GET', '/v1/actuations/nope', undefined, {})).status).toBe(404);
    const signed = signRequest({ c: 1, t: Math.floor(Date.now() / 1000), m: 'balance', p: '{}' }, DEVICE_KEY);
    const reply = await call('POST', '/v1/device', signed, {});
    expect(reply.status).toBe(200);
    expect(reply.body['ok']).toBe(true);
    const enrollment = await call('POST', '/v1/accounts/seller/device-enrollments', { name: 'probe' });
    expect(enrollment.status).toBe(201);
    const code = enrollment.body['code'] as string;
    const enrolled = await call(
      'POST',
      '/v1/device/enroll',
      {
        deviceId: xOnlyOf(ENROLLED_KEY),
        code,
        signature: schnorrSign(enrollDigest(xOnlyOf(ENROLLED_KEY), code), ENROLLED_KEY),
      },
      {},
    );
    expect(enrolled.status).toBe(201);
    expect((await call('POST', `/v1/devices/${deviceId}/revoke`)).status).toBe(200);

    // Errors answer in the envelope their routes declare.
    expect(
      (await call('GET', `/v1/sales/${'00'.repeat(32)}?preimage=${'11'.repeat(32)}`, undefined, {})).status,
    ).toBe(404);
    expect((await call('GET', '/v1/accounts/nobody')).status).toBe(404);

    expect(problems).toEqual([]);
  });
});
