import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { envOverrides, loadConfig } from '../../src/config/load.js';
import { msat } from '../../src/domain/msat.js';
import { buildApp, type CoulombApp } from '../../src/http/app.js';
import { OperatorAuth } from '../../src/http/operator-auth.js';
import { OPERATOR_ACCOUNT } from '../../src/ledger/system-accounts.js';
import { createLogger } from '../../src/logger.js';
import { openAccounts } from '../../src/main.js';
import { tierPolicy } from '../../src/policy/tiers.js';
import { FakeLightning } from '../support/fake-lightning.js';
import { createTestDatabase, gatewayDatabase } from '../support/postgres.js';
import { eventually } from '../support/regtest.js';

/**
 * Two gateway instances (every service, `openAccounts`, and the HTTP API) on one PostgreSQL
 * database: the leader owns streams, escrows, tasks, auctions, energy and device commerce; the
 * follower forwards their routes to the leader's advertised address; a deposed leader gives them
 * up (it is told to, and serves them no more) and the new leader loads them from the store and
 * carries on. The deployment's secrets are one, whatever each instance's data directory holds.
 */

type Instance = Awaited<ReturnType<typeof openAccounts>>;
interface Node {
  name: string;
  instance: Instance;
  app: CoulombApp;
  url: string;
  deposed: string[];
}

const OPERATOR_KEY = OperatorAuth.generateKey();
const TAKEOVER_DEADLINE_MS = 10_000;

describe('leader-owned services on a shared store', () => {
  let dbUrl: string;
  let admin: Sql;
  let db: ReturnType<typeof gatewayDatabase>;
  const dirs: string[] = [];
  const nodes: Node[] = [];
  const fatal: unknown[] = [];
  const lnd = new FakeLightning();

  const start = async (
    name: string,
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-owned-')),
  ): Promise<Node> => {
    dirs.push(dataDir);
    const config = loadConfig({
      env: envOverrides({ COULOMB_DATABASE_URL: dbUrl, COULOMB_DATA_DIR: dataDir }),
    });
    const deposed: string[] = [];
    const instance = await openAccounts(config, lnd, createLogger('silent'), {
      leaderPollMs: 200,
      onFatal: (err) => fatal.push(err),
      onDeposed: (reason) => deposed.push(reason),
    });
    const app = await buildApp({
      backend: lnd,
      operatorAuth: OperatorAuth.fromKey(OPERATOR_KEY),
      accounts: instance.services,
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    instance.advertise(url);
    const node = { name, instance, app, url, deposed };
    nodes.push(node);
    return node;
  };

  const call = async (
    node: Node,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(node.url + path, {
      method,
      headers: {
        authorization: `Bearer ${OPERATOR_KEY}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };

  const account = async (on: Node, id: string, fund: bigint): Promise<void> => {
    const ledger = on.instance.services.ledger;
    await ledger.ensure({ accounts: [id, OPERATOR_ACCOUNT] });
    await ledger.createAccount({ id, kind: 'agent', name: id }).durable;
    if (fund > 0n)
      await ledger.transfer({
        debitAccountId: OPERATOR_ACCOUNT,
        creditAccountId: id,
        amount: msat(fund),
        code: 'funding',
      }).durable;
    await on.instance.services.policies.set(id, tierPolicy('L3'));
  };

  beforeAll(async () => {
    dbUrl = await createTestDatabase(inject('postgresUrl'), 'leader_owned');
    admin = postgres(dbUrl, { max: 1, onnotice: false });
    db = gatewayDatabase(admin);
  });
  afterAll(async () => {
    for (const n of nodes) {
      await n.app.close().catch(() => undefined);
      await n.instance.close().catch(() => undefined);
    }
    await admin.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('shares the secrets: the first instance brings its data directory’s, every other one uses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coulomb-owned-'));
    const l402Secret = 'ab'.repeat(32);
    writeFileSync(join(dir, 'l402-secret'), l402Secret + '\n');
    const a = await start('a', dir);
    await eventually(
      () => (a.instance.services.owned?.where() === 'here' ? true : undefined),
      5000,
      'a serves',
    );
    const b = await start('b');
    expect(a.instance.services.l402?.secret?.toString('hex')).toBe(l402Secret);
    expect(b.instance.services.l402?.secret?.toString('hex')).toBe(l402Secret);
    expect(b.instance.services.devices?.gatewayId).toBe(a.instance.services.devices?.gatewayId);
    const rows = await admin<{ name: string }[]>`SELECT name FROM cluster_secrets ORDER BY name`;
    expect(rows.map((r) => r.name)).toEqual(['device-key', 'l402-secret']);
    expect((await call(a, 'GET', '/v1/cluster')).body).toMatchObject({
      store: 'shared',
      leader: true,
      leaderOwnedServices: 'here',
    });
    expect((await call(b, 'GET', '/v1/cluster')).body).toMatchObject({
      store: 'shared',
      leader: false,
      leaderOwnedServices: 'elsewhere',
    });
  });

  it('a follower forwards stream requests to the leader, whose scheduler pays the stream', async () => {
    const [a, b] = nodes as [Node, Node];
    await account(a, 'payer', 10_000_000n);
    await account(a, 'payee', 0n);
    const created = await call(b, 'POST', '/v1/accounts/payer/streams', {
      payee: { accountId: 'payee' },
      rateMsat: '1000',
      perSeconds: 1,
    });
    expect(created.status).toBe(201);
    const id = created.body['id'] as string;
    // Held in the leader's memory, not the follower's.
    expect(a.instance.services.streams?.stats().open).toBe(1);
    expect(b.instance.services.streams?.stats().open).toBe(0);
    const read = await call(b, 'GET', `/v1/accounts/payer/streams/${id}`);
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id, state: 'active' });
    await eventually(
      async () => ((await db.balance('payee')) > 0n ? true : undefined),
      5000,
      'the stream pays',
    );
  });

  it('a forwarded request is never passed on again: 503 LEADER_UNAVAILABLE with Retry-After', async () => {
    const [, b] = nodes as [Node, Node];
    const res = await call(b, 'GET', '/v1/accounts/payer/streams', undefined, {
      'coulomb-forwarded-by': 'x',
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.body).toMatchObject({ error: { code: 'LEADER_UNAVAILABLE' } });
  });

  it('a deposed leader gives the services up; the new leader loads the stream and keeps paying it', async () => {
    const [a, b] = nodes as [Node, Node];
    const [stream] = (await call(a, 'GET', '/v1/accounts/payer/streams')).body['streams'] as { id: string }[];
    expect(stream).toBeDefined();
    await db.terminateLeader();
    const killedAt = Date.now();
    await eventually(
      () => (b.instance.services.owned?.where() === 'here' ? true : undefined),
      TAKEOVER_DEADLINE_MS,
      'b serves the leader-owned services',
    );
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_DEADLINE_MS);
    expect(a.deposed).toHaveLength(1);
    expect(b.instance.services.streams?.stats().open).toBe(1);
    // The old leader now forwards, to the new one.
    const viaA = await eventually(
      async () => {
        const r = await call(a, 'GET', `/v1/accounts/payer/streams/${stream!.id}`);
        return r.status === 200 ? r : undefined;
      },
      5000,
      'a forwards to b',
    );
    expect(viaA.body).toMatchObject({ id: stream!.id, state: 'active' });
    // The new leader's scheduler pays on, under the payer's lease it took over.
    const before = await db.balance('payee');
    await eventually(
      async () => ((await db.balance('payee')) > before ? true : undefined),
      5000,
      'b pays the stream',
    );
    const stopped = await call(a, 'POST', `/v1/accounts/payer/streams/${stream!.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body).toMatchObject({ state: 'stopped' });
    // Money is conserved: the payer lost exactly what the payee got, nothing is left reserved.
    const payer = await db.balance('payer');
    const payee = await db.balance('payee');
    expect(payer + payee).toBe(10_000_000n);
    expect(fatal).toEqual([]);
  });
});
