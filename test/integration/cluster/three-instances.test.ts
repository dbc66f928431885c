import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cancelHodlInvoice,
  createHodlInvoice,
  createInvoice,
  getInvoice,
  getPayment,
  pay,
  settleHodlInvoice,
} from 'ln-service';
import type { AuthenticatedLnd } from 'lightning';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import {
  ProcessCluster,
  until,
  type ApiAnswer,
  type InstanceProcess,
} from '../../support/process-cluster.js';
import { eventually, rawLnd } from '../../support/regtest.js';

/**
 * Issue 13's acceptance with THREE real `coulomb start` processes on ONE PostgreSQL and ONE LND
 * (regtest alice), one Mosquitto: every instance serves the API, the L402 proxy and device
 * requests; the elected leader runs the singleton duties and owns streams (followers forward).
 *
 * 1. concurrent spends of one account through all three never overdraw nor exceed a budget;
 * 2. an idempotency key used on two instances moves money once;
 * 3. an L402 credential bought through instance 1's proxy works on the others, charged once per request;
 * 4. a device request counter replayed to another instance is refused;
 * 5. an invoice is credited exactly once although every instance is up;
 * 6. SIGKILL of the leader under mixed load: another leads within 10 s, and every balance is
 *    then what LND says happened, nothing left reserved.
 */
const OPERATOR_KEY = 'three-instances-operator-key-0123456789abcdef';
/** The issue's acceptance criterion: the time from the leader's SIGKILL until another instance leads. */
const TAKEOVER_DEADLINE_MS = 10_000;
const PER_REQUEST_MSAT = 1_000n;
const CREDIT_MSAT = 10_000n;

let cluster: ProcessCluster;
let upstream: Server;
let proxyDir: string;

const fail = (what: string, a: ApiAnswer): Error =>
  new Error(`${what}: ${a.status} ${JSON.stringify(a.json)}`);

/** Checks an API answer's status; returns its JSON. */
async function ok(p: Promise<ApiAnswer>, status: number, what: string): Promise<Record<string, unknown>> {
  const a = await p;
  if (a.status !== status) throw fail(what, a);
  return a.json;
}

const I = (k: number): InstanceProcess => cluster.instances[k]!;

/** Creates an account through `on`, funds it from the operator and sets its policy. */
async function account(
  on: InstanceProcess,
  id: string,
  fundMsat: bigint,
  policy: { tier: string } | { rules: object[] },
  kind: 'agent' | 'device' | 'service' = 'agent',
): Promise<void> {
  await ok(on.api('POST', '/v1/accounts', { id, kind, name: id }), 201, `create ${id}`);
  if (fundMsat > 0n)
    await ok(
      on.api('POST', `/v1/accounts/${id}/fund`, { amountMsat: fundMsat.toString() }),
      200,
      `fund ${id}`,
    );
  await ok(on.api('PUT', `/v1/accounts/${id}/policy`, policy), 200, `policy of ${id}`);
}

/** A payment's final state, asked of `on` until it is no longer pending. */
async function final(
  on: InstanceProcess,
  accountId: string,
  paymentId: string,
): Promise<Record<string, unknown>> {
  return eventually(
    async () => {
      const p = await ok(on.api('GET', `/v1/accounts/${accountId}/payments/${paymentId}`), 200, 'payment');
      return p['status'] === 'pending' || p['status'] === 'awaiting_approval' ? undefined : p;
    },
    90_000,
    `payment ${paymentId} final`,
  );
}

async function pendingDebits(accountId: string): Promise<bigint> {
  const [row] = await cluster.admin<{ p: string }[]>`
    SELECT debits_pending AS p FROM ledger_accounts WHERE id = ${accountId}`;
  return BigInt(row?.p ?? '0');
}

/** What alice's LND says of an outgoing payment: succeeded (with its fee), failed, or never made. */
async function lndPayment(
  alice: AuthenticatedLnd,
  hash: string,
): Promise<
  { state: 'succeeded'; feeMsat: bigint } | { state: 'failed' } | { state: 'pending' } | { state: 'none' }
> {
  try {
    const r = await getPayment({ lnd: alice, id: hash });
    if (r.is_confirmed) return { state: 'succeeded', feeMsat: BigInt(r.payment!.fee_mtokens) };
    if (r.is_failed) return { state: 'failed' };
    return { state: 'pending' };
  } catch (err) {
    if (Array.isArray(err) && err[0] === 404) return { state: 'none' };
    throw err;
  }
}

beforeAll(async () => {
  // The upstream of a per-request L402 service: answers every path with 200 and the path.
  upstream = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ served: req.url }));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  proxyDir = mkdtempSync(join(tmpdir(), 'coulomb-three-proxy-'));
  const services = join(proxyDir, 'services.json');
  writeFileSync(
    services,
    JSON.stringify({
      services: [
        {
          name: 'perreq',
          pathPrefix: '/perreq/',
          upstream: `http://127.0.0.1:${upstreamPort}`,
          mode: 'paid',
          pricePerRequestMsat: PER_REQUEST_MSAT.toString(),
          creditMsat: CREDIT_MSAT.toString(),
          lifetimeSeconds: 3600,
        },
      ],
    }),
  );
  cluster = await ProcessCluster.open({
    name: 'three-instances',
    instances: 3,
    operatorKey: OPERATOR_KEY,
    env: { COULOMB_PROXY_CONFIG: services },
  });
  // The first instance starts alone, so it is the one elected; then the two others.
  await I(0).start();
  await eventually(() => (I(0).leads ? true : undefined), 30_000, 'instance 1 leads');
  await Promise.all([I(1).start(), I(2).start()]);
  expect(cluster.leaders()).toEqual([I(0)]);
}, 300_000);

afterAll(async () => {
  await cluster?.close();
  if (upstream) await new Promise<void>((r) => upstream.close(() => r()));
  if (proxyDir) rmSync(proxyDir, { recursive: true, force: true });
});

describe('three coulomb start processes on one PostgreSQL and one LND (regtest)', () => {
  it('every instance serves the API; one leads and advertises its URL', async () => {
    for (const i of cluster.instances) {
      expect(await fetch(`${i.url}/health`).then((r) => r.json())).toEqual({
        status: 'ok',
        lightning: 'connected',
      });
    }
    expect(cluster.leaders()).toEqual([I(0)]);
    expect(await cluster.advertisedLeader()).toBe(I(0).url);
    const views = await Promise.all(
      cluster.instances.map((i) => ok(i.api('GET', '/v1/cluster'), 200, 'cluster')),
    );
    expect(views.map((v) => [v['store'], v['leader'], v['leaderOwnedServices']])).toEqual([
      ['shared', true, 'here'],
      ['shared', false, 'elsewhere'],
      ['shared', false, 'elsewhere'],
    ]);
    expect(new Set(views.map((v) => v['instanceId'])).size).toBe(3);
    // The device key is shared through the database: one gateway id whichever instance answers.
    const ids = await Promise.all(
      cluster.instances.map(
        async (i) => (await ok(i.api('GET', '/v1/device/gateway'), 200, 'gateway id'))['gatewayId'],
      ),
    );
    expect(new Set(ids).size).toBe(1);
  });

  it('concurrent payments of one account through all three stay within its budget, and the successes are the balance drop', async () => {
    const BUDGET = 41_000_000n;
    const AMOUNT = 2_000_000n;
    const MAX_FEE = 20_000n;
    const FUNDED = 200_000_000n;
    await account(I(0), 'budgeted', FUNDED, {
      rules: [
        { type: 'max_per_payment', maxMsat: '5000000' },
        { type: 'budget', window: 'day', maxMsat: BUDGET.toString() },
      ],
    });
    const [bob, carol] = await Promise.all([rawLnd('bob'), rawLnd('carol')]);
    const bills = await Promise.all(
      Array.from({ length: 30 }, (_, k) =>
        createInvoice({ lnd: k % 2 ? carol : bob, mtokens: AMOUNT.toString(), description: `budget ${k}` }),
      ),
    );
    // 30 at once, spread over the three instances.
    const answers = await Promise.all(
      bills.map((b, k) =>
        I(k % 3).api('POST', '/v1/accounts/budgeted/payments', {
          request: b.request,
          maxFeeMsat: MAX_FEE.toString(),
        }),
      ),
    );
    const outcomes = await Promise.all(
      answers.map(async (a, k) => {
        if (a.status === 201 || a.status === 202)
          return {
            k,
            status: 'admitted' as const,
            payment: await final(I(k % 3), 'budgeted', a.json['id'] as string),
          };
        return { k, status: 'refused' as const, answer: a };
      }),
    );
    // Every refusal is the budget's (403 QUOTA_EXCEEDED); nothing else went wrong.
    for (const o of outcomes.filter((x) => x.status === 'refused'))
      expect([o.answer!.status, (o.answer!.json['error'] as { code?: string } | undefined)?.code]).toEqual([
        403,
        'QUOTA_EXCEEDED',
      ]);
    const succeeded = outcomes.filter((o) => o.status === 'admitted' && o.payment!['status'] === 'succeeded');
    const spent = succeeded.reduce(
      (sum, o) => sum + BigInt(o.payment!['amountMsat'] as string) + BigInt(o.payment!['feeMsat'] as string),
      0n,
    );
    expect(succeeded.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.status === 'refused').length).toBeGreaterThan(0);
    // The payees were paid exactly for the payments the gateway booked as succeeded.
    for (const o of outcomes) {
      const inv = await getInvoice({ lnd: o.k % 2 ? carol : bob, id: bills[o.k]!.id });
      expect(inv.is_confirmed).toBe(succeeded.includes(o));
    }
    const balance = await cluster.db.balance('budgeted');
    expect(balance).toBeGreaterThanOrEqual(0n);
    expect(spent).toBeLessThanOrEqual(BUDGET);
    expect(FUNDED - balance).toBe(spent);
    expect(await pendingDebits('budgeted')).toBe(0n);
  });

  it('concurrent transfers of one account through all three never overdraw it', async () => {
    const FUNDED = 30_000_000n;
    const AMOUNT = 2_000_000n;
    await account(I(1), 'drained', FUNDED, { tier: 'L3' });
    await account(I(2), 'sink', 0n, { tier: 'L0' });
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, k) =>
        I(k % 3).api('POST', '/v1/accounts/drained/transfers', {
          toAccountId: 'sink',
          amountMsat: AMOUNT.toString(),
        }),
      ),
    );
    const done = answers.filter((a) => a.status === 201);
    const refused = answers.filter((a) => a.status !== 201);
    for (const a of refused)
      expect([a.status, (a.json['error'] as { code?: string } | undefined)?.code]).toEqual([
        402,
        'INSUFFICIENT_FUNDS',
      ]);
    // The balance allows exactly 15 of the 30, whichever instances served them.
    expect(done).toHaveLength(Number(FUNDED / AMOUNT));
    expect(await cluster.db.balance('drained')).toBe(0n);
    expect(await cluster.db.balance('sink')).toBe(FUNDED);
    expect(new Set(done.map((a) => a.json['transferId'])).size).toBe(done.length);
  });

  it('an idempotency key used on two instances moves the money once', async () => {
    const FUNDED = 50_000_000n;
    await account(I(2), 'idem', FUNDED, { tier: 'L3' });
    await account(I(2), 'idem-to', 0n, { tier: 'L0' });
    const bob = await rawLnd('bob');
    const bill = await createInvoice({ lnd: bob, mtokens: '3000000', description: 'once by key' });
    const body = { request: bill.request, maxFeeMsat: '10000', idempotencyKey: 'pay-once-7f3a' };
    // The same request with the same key, at once through two instances, then through the third.
    const both = await Promise.all([
      I(0).api('POST', '/v1/accounts/idem/payments', body),
      I(1).api('POST', '/v1/accounts/idem/payments', body),
    ]);
    const third = await I(2).api('POST', '/v1/accounts/idem/payments', body);
    for (const a of [...both, third]) expect([201, 202]).toContain(a.status);
    const ids = new Set([...both, third].map((a) => a.json['id']));
    expect(ids.size).toBe(1);
    const paid = await final(I(2), 'idem', [...ids][0] as string);
    expect(paid['status']).toBe('succeeded');
    expect((await getInvoice({ lnd: bob, id: bill.id })).is_confirmed).toBe(true);
    const fee = BigInt(paid['feeMsat'] as string);
    expect(await cluster.db.balance('idem')).toBe(FUNDED - 3_000_000n - fee);

    // An internal transfer under one key, through all three at once: one transfer.
    const transfer = { toAccountId: 'idem-to', amountMsat: '4000000', idempotencyKey: 'move-once-19c2' };
    const moved = await Promise.all(
      cluster.instances.map((i) => i.api('POST', '/v1/accounts/idem/transfers', transfer)),
    );
    for (const a of moved) expect(a.status).toBe(201);
    expect(new Set(moved.map((a) => a.json['transferId'])).size).toBe(1);
    expect(moved.filter((a) => a.json['replayed'] === false)).toHaveLength(1);
    expect(await cluster.db.balance('idem')).toBe(FUNDED - 3_000_000n - fee - 4_000_000n);
    expect(await cluster.db.balance('idem-to')).toBe(4_000_000n);
    // The same key for another request is refused, whichever instance sees it.
    const other = await I(1).api('POST', '/v1/accounts/idem/transfers', {
      ...transfer,
      amountMsat: '5000000',
    });
    expect([other.status, (other.json['error'] as { code?: string } | undefined)?.code]).toEqual([
      409,
      'IDEMPOTENCY_CONFLICT',
    ]);
  });

  it("an L402 credential bought through instance 1's proxy works on all three, its credit charged once per request", async () => {
    const challenge = await fetch(`${I(0).proxyUrl}/perreq/hello`);
    expect(challenge.status).toBe(402);
    const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(
      challenge.headers.get('www-authenticate') ?? '',
    );
    expect(m).not.toBeNull();
    const paid = await pay({ lnd: await rawLnd('bob'), request: m![2]! });
    const authorization = `L402 ${m![1]}:${paid.secret}`;
    const tokenId = decodeV2(Buffer.from(m![1]!, 'base64')).identifier.subarray(34).toString('hex');
    const credential = `l402:${tokenId}`;
    const get = (k: number, path: string): Promise<Response> =>
      fetch(`${I(k).proxyUrl}/perreq/${path}`, { headers: { authorization } });

    // One request at a time, round the three proxies: each takes exactly one price off the credit.
    let remaining = CREDIT_MSAT;
    for (const k of [1, 2, 0, 1]) {
      const res = await get(k, `seq-${k}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ served: `/perreq/seq-${k}` });
      remaining -= PER_REQUEST_MSAT;
      expect(res.headers.get('x-l402-credit-remaining-msat')).toBe(remaining.toString());
    }
    await eventually(
      async () => ((await cluster.db.balance(credential)) === remaining ? true : undefined),
      10_000,
      'the credential balance after the sequential requests',
    );

    // Three at once, one per instance: three prices.
    const together = await Promise.all([0, 1, 2].map((k) => get(k, `together-${k}`)));
    expect(together.map((r) => r.status)).toEqual([200, 200, 200]);
    remaining -= 3n * PER_REQUEST_MSAT;
    await eventually(
      async () => ((await cluster.db.balance(credential)) === remaining ? true : undefined),
      10_000,
      'the credential balance after the concurrent requests',
    );

    // The rest of the credit buys exactly the requests it pays for, then the proxies ask again (402).
    let served = 0;
    for (let n = 0; n < 10; n++) {
      const res = await get(n % 3, `rest-${n}`);
      if (res.status === 402) break;
      expect(res.status).toBe(200);
      served += 1;
    }
    expect(BigInt(served)).toBe(remaining / PER_REQUEST_MSAT);
    for (const k of [0, 1, 2]) expect((await get(k, 'spent')).status).toBe(402);
    expect(await cluster.db.balance(credential)).toBe(0n);
    // The challenge's payment was credited to the credential once.
    const [credits] = await cluster.admin<{ n: number; total: string }[]>`
      SELECT count(*)::int AS n, coalesce(sum(amount), 0)::text AS total FROM ledger_transfers
      WHERE credit_account_id = ${credential} AND state = 'posted'`;
    expect(credits).toEqual({ n: 1, total: CREDIT_MSAT.toString() });
  });

  it('a device request replayed to another instance is refused (REPLAYED)', async () => {
    await account(I(0), 'dev-acct', 5_000_000n, { tier: 'L2' }, 'device');
    const gatewayId = (await ok(I(1).api('GET', '/v1/device/gateway'), 200, 'gateway id'))[
      'gatewayId'
    ] as string;
    const device = VirtualDevice.random(gatewayId);
    await ok(
      I(0).api('POST', '/v1/devices', { deviceId: device.id, accountId: 'dev-acct', name: 'meter' }),
      201,
      'register',
    );
    const send = async (
      k: number,
      envelope: object,
    ): Promise<{ ok: boolean; b: Record<string, unknown> }> => {
      const answer = await ok(I(k).api('POST', '/v1/device', envelope), 200, `device request to ${k + 1}`);
      return { ok: answer['ok'] as boolean, b: JSON.parse(answer['b'] as string) as Record<string, unknown> };
    };

    // A signed payment through instance 1, then the same envelope replayed to the other two.
    const carol = await rawLnd('carol');
    const bill = await createInvoice({ lnd: carol, mtokens: '2000000', description: 'device, once' });
    const first = await device.sign('pay', { invoice: bill.request }, 1);
    const paid = await send(0, first);
    expect(paid).toMatchObject({ ok: true, b: { status: 'succeeded' } });
    for (const k of [1, 2])
      expect(await send(k, first)).toMatchObject({ ok: false, b: { code: 'REPLAYED' } });
    expect((await getInvoice({ lnd: carol, id: bill.id })).is_confirmed).toBe(true);
    const fee = BigInt(paid.b['feeMsat'] as string);
    expect(await cluster.db.balance('dev-acct')).toBe(5_000_000n - 2_000_000n - fee);

    // One signed request handed to the three at once: one of them serves it.
    const second = await device.sign('balance', {}, 2);
    const answers = await Promise.all([0, 1, 2].map((k) => send(k, second)));
    expect(answers.filter((a) => a.ok)).toHaveLength(1);
    expect(answers.filter((a) => !a.ok)).toEqual([
      { ok: false, b: expect.objectContaining({ code: 'REPLAYED' }) },
      { ok: false, b: expect.objectContaining({ code: 'REPLAYED' }) },
    ]);
    // A new counter is served by a follower, and refused again by the others.
    const third = await device.sign('balance', {}, 3);
    expect(await send(2, third)).toMatchObject({
      ok: true,
      b: { balanceMsat: (5_000_000n - 2_000_000n - fee).toString() },
    });
    for (const k of [0, 1])
      expect(await send(k, third)).toMatchObject({ ok: false, b: { code: 'REPLAYED' } });
  });

  it('invoices made through any instance are credited exactly once, all instances up', async () => {
    await account(I(1), 'payee', 0n, { tier: 'L0' });
    const amounts = [11_000_000n, 12_000_000n, 13_000_000n];
    const invoices = await Promise.all(
      amounts.map((a, k) =>
        ok(
          I(k).api('POST', '/v1/accounts/payee/invoices', { amountMsat: a.toString() }),
          201,
          `invoice via ${k + 1}`,
        ),
      ),
    );
    const bob = await rawLnd('bob');
    await Promise.all(invoices.map((inv) => pay({ lnd: bob, request: inv['request'] as string })));
    const total = amounts.reduce((a, b) => a + b, 0n);
    await eventually(
      async () => ((await cluster.db.balance('payee')) === total ? true : undefined),
      30_000,
      'the three credits',
    );
    for (const inv of invoices) {
      const hash = inv['paymentHash'] as string;
      expect(await cluster.db.invoiceCredits(hash)).toBe(1);
      for (const i of cluster.instances)
        expect((await ok(i.api('GET', `/v1/accounts/payee/invoices/${hash}`), 200, 'invoice'))['state']).toBe(
          'settled',
        );
    }
    const [credits] = await cluster.admin<{ n: number }[]>`
      SELECT count(*)::int AS n FROM ledger_transfers WHERE credit_account_id = 'payee'`;
    expect(credits?.n).toBe(3);
  });

  it('a stream started through a follower is run by the leader (the follower forwards it)', async () => {
    await account(I(0), 'streamer', 10_000_000n, { tier: 'L3' });
    await account(I(0), 'listener', 0n, { tier: 'L0' });
    const started = await ok(
      I(1).api('POST', '/v1/accounts/streamer/streams', {
        payee: { accountId: 'listener' },
        rateMsat: '1000',
        perSeconds: 1,
        maxTotalMsat: '3000',
      }),
      201,
      'stream through a follower',
    );
    const id = started['id'] as string;
    const stopped = await eventually(
      async () => {
        const s = await ok(
          I(2).api('GET', `/v1/accounts/streamer/streams/${id}`),
          200,
          'stream through the other follower',
        );
        return s['state'] === 'stopped' ? s : undefined;
      },
      60_000,
      'the stream to reach its cap',
    );
    expect(stopped).toMatchObject({ stopReason: 'cap_reached', paidMsat: '3000' });
    // The stream's last chunk lands with the scheduler's batch.
    await eventually(
      async () => ((await cluster.db.balance('listener')) === 3000n ? true : undefined),
      10_000,
      'the last chunk in the database',
    );
    expect(await cluster.db.balance('streamer')).toBe(10_000_000n - 3000n);
  });

  it('SIGKILL of the leader under load: another leads within 10 s, and every balance is what LND says happened', async () => {
    const FUNDED = 200_000_000n;
    await account(I(1), 'mixed', FUNDED, { tier: 'L3' });
    await account(I(2), 'mixed-in', 0n, { tier: 'L0' });
    const [alice, bob, carol] = await Promise.all([rawLnd('alice'), rawLnd('bob'), rawLnd('carol')]);
    const leader = cluster.leaders();
    expect(leader).toHaveLength(1);
    const old = leader[0]!;

    // Incoming: invoices of both accounts made through every instance, paid by bob around the kill.
    const incoming = await Promise.all(
      Array.from({ length: 6 }, (_, k) =>
        ok(
          I(k % 3).api('POST', `/v1/accounts/${k % 2 ? 'mixed' : 'mixed-in'}/invoices`, {
            amountMsat: String(5_000_000 + k * 1000),
          }),
          201,
          `incoming invoice ${k}`,
        ).then((inv) => ({
          accountId: k % 2 ? 'mixed' : 'mixed-in',
          hash: inv['paymentHash'] as string,
          request: inv['request'] as string,
          amount: BigInt(inv['amountMsat'] as string),
        })),
      ),
    );

    // Outgoing, held by carol (in flight through every instance, the leader included, at the kill)...
    const holds = Array.from({ length: 6 }, () => randomBytes(32));
    const held = await Promise.all(
      holds.map((preimage, k) =>
        createHodlInvoice({
          lnd: carol,
          id: createHash('sha256').update(preimage).digest('hex'),
          mtokens: String(1_500_000 + k * 1000),
          description: `held ${k}`,
        }),
      ),
    );
    // Each answer kept as settled at once: those of the killed instance reject (no answer).
    const requests: { hash: string; amount: bigint; answer: Promise<PromiseSettledResult<ApiAnswer>> }[] = [];
    const settled = (p: Promise<ApiAnswer>): Promise<PromiseSettledResult<ApiAnswer>> =>
      p.then(
        (value) => ({ status: 'fulfilled', value }),
        (reason: unknown) => ({ status: 'rejected', reason }),
      );
    held.forEach((h, k) =>
      requests.push({
        hash: h.id,
        amount: BigInt(1_500_000 + k * 1000),
        answer: settled(
          I(k % 3).api('POST', '/v1/accounts/mixed/payments', { request: h.request, maxFeeMsat: '20000' }),
        ),
      }),
    );
    await eventually(
      async () => {
        const states = await Promise.all(held.map((h) => getInvoice({ lnd: carol, id: h.id })));
        return states.every((s) => s.is_held) ? true : undefined;
      },
      60_000,
      'every held payment to reach carol',
    );
    // ...and plain ones to bob, sent through every instance as the leader dies.
    const plain = await Promise.all(
      Array.from({ length: 9 }, (_, k) =>
        createInvoice({ lnd: bob, mtokens: String(1_000_000 + k * 1000), description: `plain ${k}` }),
      ),
    );
    plain.forEach((p, k) =>
      requests.push({
        hash: p.id,
        amount: BigInt(1_000_000 + k * 1000),
        answer: settled(
          I(k % 3).api('POST', '/v1/accounts/mixed/payments', { request: p.request, maxFeeMsat: '20000' }),
        ),
      }),
    );
    const incomingPaid = Promise.allSettled(incoming.map((inv) => pay({ lnd: bob, request: inv.request })));

    const killedAt = await old.kill9();
    const next = await eventually(
      () => cluster.leaders().find((i) => i !== old),
      TAKEOVER_DEADLINE_MS + 20_000,
      'another instance to lead',
    );
    const tookOverMs = next.leadLines[0]! - killedAt;
    expect(tookOverMs).toBeLessThan(TAKEOVER_DEADLINE_MS);
    expect(cluster.leaders()).toEqual([next]);
    await eventually(
      async () => ((await cluster.advertisedLeader()) === next.url ? true : undefined),
      10_000,
      'the new address',
    );
    await eventually(
      async () =>
        (await ok(next.api('GET', '/v1/cluster'), 200, 'cluster'))['leader'] === true ? true : undefined,
      10_000,
      'the new leader to say so',
    );
    for (const i of cluster.live().filter((x) => x !== next))
      expect(await ok(i.api('GET', '/v1/cluster'), 200, 'cluster')).toMatchObject({
        leader: false,
        leaderOwnedServices: 'elsewhere',
      });

    // LND decides the held ones after the takeover: half settled, half canceled.
    for (const [k, preimage] of holds.entries()) {
      if (k % 2 === 0) await settleHodlInvoice({ lnd: carol, secret: preimage.toString('hex') });
      else await cancelHodlInvoice({ lnd: carol, id: held[k]!.id });
    }
    await incomingPaid;
    const answers = await Promise.all(requests.map((r) => r.answer));
    // Requests to the survivors were answered (a payment or a refusal); those to the killed one may have no answer.
    for (const [k, a] of answers.entries()) {
      const via = (k < held.length ? k : k - held.length) % 3;
      if (I(via) === old) continue;
      expect(a.status).toBe('fulfilled');
      if (a.status === 'fulfilled') expect([201, 202]).toContain(a.value.status);
    }

    // Once LND is final for every payment, the gateway is too: nothing pending, nothing reserved.
    const survivor = next;
    const outcomes = await until<Awaited<ReturnType<typeof lndPayment>>[]>(
      async () => {
        const all = await Promise.all(requests.map((r) => lndPayment(alice, r.hash)));
        const inLnd = all.filter((o) => o.state === 'pending').length;
        if (inLnd > 0) return { waiting: `${inLnd} payments pending in LND` };
        const page = await ok(survivor.api('GET', '/v1/accounts/mixed/payments?limit=500'), 200, 'payments');
        const payments = page['payments'] as { id: string; status: string; paymentHash: string }[];
        const open = payments.filter((p) => p.status === 'pending');
        if (open.length > 0) {
          const stored = await Promise.all(
            open.map(async (p) => {
              const [row] = await cluster.admin<{ value: string }[]>`
                SELECT value FROM ledger_records WHERE key = ${`pay!${p.id}`}`;
              const views = await Promise.all(
                cluster.live().map(async (i) => {
                  const a = await i.api('GET', `/v1/accounts/mixed/payments/${p.id}`);
                  return `instance ${i.index + 1}: ${String(a.json['status'])}`;
                }),
              );
              return `${p.id}: stored ${row?.value ?? 'none'}; ${views.join(', ')}`;
            }),
          );
          return {
            waiting: `pending in the gateway's list: ${stored.join(' | ')}; reserved ${await pendingDebits('mixed')}`,
          };
        }
        const reserved = await pendingDebits('mixed');
        if (reserved !== 0n) return { waiting: `${reserved} msat reserved` };
        return { done: all };
      },
      200_000,
      'every payment final in LND and in the gateway',
    );
    // Incoming: every invoice LND settled is credited, once.
    const expected = new Map<string, bigint>([
      ['mixed', FUNDED],
      ['mixed-in', 0n],
    ]);
    for (const inv of incoming) {
      const settled = (await getInvoice({ lnd: alice, id: inv.hash })).is_confirmed;
      await eventually(
        async () => ((await cluster.db.invoiceCredits(inv.hash)) === (settled ? 1 : 0) ? true : undefined),
        60_000,
        `the credit of ${inv.hash}`,
      );
      if (settled) expected.set(inv.accountId, expected.get(inv.accountId)! + inv.amount);
    }
    // Outgoing: what LND paid is debited with its fee; what failed or never reached LND is not.
    const page = await ok(survivor.api('GET', '/v1/accounts/mixed/payments?limit=500'), 200, 'payments');
    const booked = page['payments'] as {
      paymentHash: string;
      status: string;
      feeMsat?: string;
      amountMsat: string;
    }[];
    for (const [k, r] of requests.entries()) {
      const lnd = outcomes[k]!;
      const records = booked.filter((p) => p.paymentHash === r.hash);
      if (lnd.state === 'succeeded') {
        expected.set('mixed', expected.get('mixed')! - r.amount - lnd.feeMsat);
        expect(records.filter((p) => p.status === 'succeeded')).toEqual([
          expect.objectContaining({ amountMsat: r.amount.toString(), feeMsat: lnd.feeMsat.toString() }),
        ]);
      } else {
        expect(records.filter((p) => p.status === 'succeeded')).toEqual([]);
      }
    }
    // The held ones came out as LND decided them.
    for (const [k] of holds.entries()) expect(outcomes[k]!.state).toBe(k % 2 === 0 ? 'succeeded' : 'failed');
    for (const [id, balance] of expected) expect([id, await cluster.db.balance(id)]).toEqual([id, balance]);
    expect(await pendingDebits('mixed')).toBe(0n);

    // Its supervisor restarts the killed instance: it serves again, as a follower.
    await old.start();
    expect(cluster.leaders()).toEqual([next]);
    const seen = await ok(
      old.api('GET', '/v1/accounts/mixed'),
      200,
      'the account through the restarted instance',
    );
    expect(seen['balanceMsat']).toBe(expected.get('mixed')!.toString());
  }, 400_000);
});
