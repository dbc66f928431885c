/**
 * Paid L402 requests/s through one gateway instance against two instances sharing one PostgreSQL
 * store and one LND (issue 13), in one run on the bench regtest network:
 *
 *   - each instance is a real `node dist/cli/index.js start` (what `npm start` runs) with its own
 *     data dir and ports, the same operator key, the same COULOMB_DATABASE_URL (a PostgreSQL 15
 *     server started here, fsync on) and COULOMB_ADVERTISE_URL its own API URL, on alice's LND;
 *     the L402 root key is shared through the database, so a credential bought through one
 *     instance works through the other (checked for every credential);
 *   - the sample OpenAI-compatible upstream in its own process; the baseline, in the same run, a
 *     minimal node:http reverse proxy to it (bench/plain-proxy.mjs);
 *   - the load from a separate autocannon process (bench/l402-load.mjs), 32 connections, each
 *     alternating two of 32 credentials (bought before measuring: a 402, bob's LND pays it);
 *   - services: `fixed`, 1 msat a request (`GET /v1/models`), and `metered`, per token
 *     (`POST /v1/chat/completions`, a reservation then its post each request).
 *
 * Variants, in rounds of rotated order after an unrecorded warm-up of each:
 *
 *   - plain: the plain proxy;
 *   - one leveldb: a third instance on its own LevelDB store (the single-process default, a second
 *     baseline; its own credentials);
 *   - one: all connections to instance A (B runs, idle);
 *   - two sticky: half the connections to A, half to B, each credential used through one instance;
 *   - two spread: the same split, each credential used through both (its account lease, which a
 *     debit needs, moves between the instances).
 *
 * Where the time goes: CPU time a request of the gateway processes, the PostgreSQL server (its
 * backends and workers), the upstream, the plain proxy and the load generator (from /proc), the
 * database's transactions a request (`pg_stat_database`) and its top statements
 * (`pg_stat_statements`, reset each round).
 *
 *   npm run bench:l402-instances [-- --duration 8 --connections 32 --rounds 3 --services fixed,metered]
 *   npm run bench:l402-instances -- --track all     (statements inside the commit function too)
 *   npm run bench:l402-instances -- --logs <dir>    (the instances' output kept there)
 *
 * Ports: the regtest network at 29000 (COULOMB_BENCH_REGTEST_BASE_PORT), PostgreSQL 28990
 * (--pg-port), the instances' APIs 29050, 29051 and 29052 (LevelDB) (--http-port); proxies and brokers on free ones.
 * Everything it started is stopped at the end, also after a failure (the network unless --keep).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import postgres, { type Sql } from 'postgres';
import { createTestDatabase, startPostgres, type RunningPostgres } from '../test/support/postgres.js';
import {
  buyCredential,
  checkPaid,
  cpuUs,
  fixedPriceService,
  loadRound,
  med,
  Processes,
  rotated,
  round1,
  treeCpuUs,
  upstreamAndPlain,
  writeServices,
  type LoadTarget,
  type Round,
} from './l402-support.js';
import { benchNetwork, runBench } from './support.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    services: { type: 'string', default: 'fixed,metered' },
    'pg-port': { type: 'string', default: '28990' },
    'http-port': { type: 'string', default: '29050' },
    /** `all`: pg_stat_statements also counts the statements inside functions (the commit function's). */
    track: { type: 'string', default: 'top' },
    /** A directory for the instances' output (`a.log`, `b.log`), at COULOMB_LOG_LEVEL (default warn). */
    logs: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const CONNECTIONS = Number(values.connections);
if (CONNECTIONS % 4 !== 0) throw new Error('--connections must be a multiple of 4');
const network = benchNetwork({ dataDir: '.regtest-bench-instances', basePort: 29000 });
const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-bench-instances-'));
// The server runs as the postgres user, which cannot enter the 0700 directory above.
const pgDir = join(tmpdir(), `coulomb-bench-instances-pg-${process.pid}`);
const procs = new Processes();
let server: RunningPostgres | undefined;
let admin: Sql | undefined;

const CHAT_BODY = JSON.stringify({
  model: 'sample-small',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 1,
});
const SERVICES = {
  fixed: { path: '/v1/models', init: {} as RequestInit, target: {} as Partial<LoadTarget> },
  metered: {
    path: '/v1/chat/completions',
    init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: CHAT_BODY },
    target: { method: 'POST', body: CHAT_BODY, contentType: 'application/json' } as Partial<LoadTarget>,
  },
} as const;
type ServiceName = keyof typeof SERVICES;

interface Instance {
  name: string;
  api: string;
  proxy: string;
  pid: number;
}

/** Runs `fn` over `items`, `n` at a time. */
async function inParallel<T, R>(items: T[], n: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** What PostgreSQL did in a round: transactions, and its statements by time. */
interface DbRound {
  commits: number;
  statements: { query: string; calls: number; ms: number }[];
}

async function dbBefore(sql: Sql): Promise<number> {
  await sql`SELECT pg_stat_statements_reset()`;
  const [row] = await sql<{ n: string }[]>`
    SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`;
  return Number(row!.n);
}

async function dbAfter(sql: Sql, commits0: number): Promise<DbRound> {
  // The statistics collector is told at a backend's transaction end, within its flush interval.
  await new Promise((r) => setTimeout(r, 1100));
  const [row] = await sql<{ n: string }[]>`
    SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()`;
  const statements = await sql<{ query: string; calls: string; ms: number }[]>`
    SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, total_exec_time AS ms
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND query NOT LIKE '%pg_stat%'
    ORDER BY total_exec_time DESC LIMIT 8`;
  return {
    commits: Number(row!.n) - commits0,
    statements: statements.map((s) => ({ query: s.query.slice(0, 110), calls: Number(s.calls), ms: s.ms })),
  };
}

async function main(): Promise<void> {
  const wanted = values.services!.split(',').map((s) => s.trim()) as ServiceName[];
  for (const s of wanted) if (!(s in SERVICES)) throw new Error(`unknown service ${s}`);
  const status = await network.up();
  const alice = status.nodes.find((n) => n.name === 'alice')!;
  const bob = await network.lnd('bob');

  server = await startPostgres({
    dir: pgDir,
    port: Number(values['pg-port']),
    settings: ['shared_preload_libraries=pg_stat_statements', `pg_stat_statements.track=${values.track}`],
  });
  const databaseUrl = await createTestDatabase(server.url, 'l402_instances');
  admin = postgres(databaseUrl, { max: 1, onnotice: false });
  await admin`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
  const postmaster = Number(readFileSync(join(pgDir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);

  const { upstream, plain } = await upstreamAndPlain(procs);
  const configFile = join(dataDir, 'services.json');
  writeServices(configFile, [
    { ...fixedPriceService(upstream.url, '/v1/models'), creditMsat: '10000000' },
    {
      name: 'chat',
      pathPrefix: '/v1/chat/',
      upstream: upstream.url,
      mode: 'paid',
      models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '1' } },
      creditMsat: '10000000',
      lifetimeSeconds: 86_400,
    },
  ]);
  const operatorKey = randomBytes(24).toString('hex');
  /** An instance on the shared database; with `shared` false, one on its own LevelDB store. */
  const startInstance = async (name: string, port: number, shared = true): Promise<Instance> => {
    const api = `http://127.0.0.1:${port}`;
    const { child, url } = await procs.start(
      [
        'dist/cli/index.js',
        'start',
        '--port',
        String(port),
        '--data-dir',
        join(dataDir, name),
        '--lnd-socket',
        alice.grpcSocket,
        '--lnd-cert',
        alice.tlsCert,
        '--lnd-macaroon',
        alice.adminMacaroon,
      ],
      /L402 proxy: (http:\/\/\S+)/,
      {
        COULOMB_OPERATOR_KEY: operatorKey,
        ...(shared ? { COULOMB_DATABASE_URL: databaseUrl, COULOMB_ADVERTISE_URL: api } : {}),
        COULOMB_LOG_LEVEL: process.env['COULOMB_LOG_LEVEL'] ?? 'warn',
        COULOMB_PROXY_PORT: '0',
        COULOMB_PROXY_CONFIG: configFile,
        COULOMB_MQTT_PORT: '0',
        COULOMB_SAMPLE_UPSTREAM_PORT: '0',
      },
      values.logs ? join(values.logs, `${name}.log`) : undefined,
    );
    return { name, api, proxy: url, pid: child.pid! };
  };
  // A first (it is elected leader), then B.
  const a = await startInstance('a', Number(values['http-port']));
  const b = await startInstance('b', Number(values['http-port']) + 1);
  // A second baseline: one instance on the embedded LevelDB store (as bench/l402-proxy.ts runs it).
  const level = await startInstance('level', Number(values['http-port']) + 2, false);
  const cluster = await fetch(`${a.api}/v1/cluster`, { headers: { authorization: `Bearer ${operatorKey}` } });
  console.error(`[bench] cluster: ${cluster.status} ${await cluster.text()}`);

  const cpuOf: Record<string, () => number> = {
    'gateway a': () => cpuUs(a.pid),
    'gateway b': () => cpuUs(b.pid),
    'gateway leveldb': () => cpuUs(level.pid),
    postgres: () => treeCpuUs(postmaster),
    upstream: () => cpuUs(upstream.child.pid!),
    'plain proxy': () => cpuUs(plain.child.pid!),
  };
  const out: Record<string, unknown> = {
    connections: CONNECTIONS,
    durationSec: Number(values.duration),
    rounds: Number(values.rounds),
    loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
  };

  for (const svc of wanted) {
    const { path, init, target } = SERVICES[svc];
    // Credential k bought through instance k % 2, then checked through the other.
    const t0 = performance.now();
    const t1 = performance.now();
    const levelCreds = await inParallel(
      Array.from({ length: CONNECTIONS }, (_, k) => k),
      4,
      async () => buyCredential(level.proxy, bob, path, init),
    );
    console.error(
      `[bench] ${svc}: ${levelCreds.length} credentials bought from the LevelDB instance in ${((performance.now() - t1) / 1000).toFixed(1)} s`,
    );
    const creds = await inParallel(
      Array.from({ length: CONNECTIONS }, (_, k) => k),
      4,
      async (k) => {
        const [via, other] = k % 2 === 0 ? [a, b] : [b, a];
        const auth = await buyCredential(via.proxy, bob, path, init);
        await checkPaid(other.proxy, auth, path, init);
        return auth;
      },
    );
    console.error(
      `[bench] ${svc}: ${creds.length} credentials bought in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    // Connection i cycles two credentials: i and its pair; connection i goes to urls[i % urls.length].
    const pairs = (mate: (i: number) => number, of = creds): string[][] =>
      of.map((c, i) => [c, of[mate(i)]!]);
    const variants: { name: string; target: LoadTarget }[] = [
      {
        name: 'plain',
        target: { ...target, urls: [`${plain.url}${path}`], perConnection: pairs((i) => i ^ 1) },
      },
      {
        name: 'one leveldb',
        target: {
          ...target,
          urls: [`${level.proxy}${path}`],
          perConnection: pairs((i) => i ^ 1, levelCreds),
        },
      },
      { name: 'one', target: { ...target, urls: [`${a.proxy}${path}`], perConnection: pairs((i) => i ^ 1) } },
      {
        name: 'two sticky',
        target: {
          ...target,
          urls: [`${a.proxy}${path}`, `${b.proxy}${path}`],
          perConnection: pairs((i) => i ^ 2),
        },
      },
      {
        name: 'two spread',
        target: {
          ...target,
          urls: [`${a.proxy}${path}`, `${b.proxy}${path}`],
          perConnection: pairs((i) => i ^ 1),
        },
      },
    ];
    const round = (v: (typeof variants)[number], seconds: number): Promise<Round> =>
      loadRound(v.target, cpuOf, { connections: CONNECTIONS, seconds });
    for (const v of variants) await round(v, 3);
    const results = new Map<string, { r: Round; db: DbRound }[]>(variants.map((v) => [v.name, []]));
    for (let i = 0; i < Number(values.rounds); i++) {
      for (const v of rotated(variants, i)) {
        const commits0 = await dbBefore(admin);
        const r = await round(v, Number(values.duration));
        const db = await dbAfter(admin, commits0);
        results.get(v.name)!.push({ r, db });
        const gw = r.cpu['gateway a']! + r.cpu['gateway b']! + r.cpu['gateway leveldb']!;
        console.error(
          `${svc} round ${i + 1} ${v.name.padEnd(10)} ${r.okRps.toFixed(0)} paid/s  p50 ${r.p50} ms  p99 ${r.p99} ms  ` +
            `non-2xx ${r.non2xx}  errors ${r.errors}  cpu µs/req: gateways ${gw.toFixed(1)} ` +
            `(a ${r.cpu['gateway a']!.toFixed(1)}, b ${r.cpu['gateway b']!.toFixed(1)}, leveldb ${r.cpu['gateway leveldb']!.toFixed(1)}), postgres ${r.cpu['postgres']!.toFixed(1)}, ` +
            `upstream ${r.cpu['upstream']!.toFixed(1)}, plain ${r.cpu['plain proxy']!.toFixed(1)}, ` +
            `load gen ${r.cpu['load generator']!.toFixed(1)}  db commits/req ${(db.commits / Math.max(1, r.total)).toFixed(3)}  load ${r.load}`,
        );
      }
    }
    const summary: Record<string, unknown> = {};
    const medianOf = (name: string): number => med(results.get(name)!.map((x) => x.r.okRps));
    const plainRps = medianOf('plain');
    const oneRps = medianOf('one');
    for (const v of variants) {
      const xs = results.get(v.name)!;
      const rps = medianOf(v.name);
      const cpu: Record<string, number> = {};
      for (const k of Object.keys(xs[0]!.r.cpu)) cpu[k] = round1(med(xs.map((x) => x.r.cpu[k]!)));
      cpu['gateways'] = round1(
        med(xs.map((x) => x.r.cpu['gateway a']! + x.r.cpu['gateway b']! + x.r.cpu['gateway leveldb']!)),
      );
      // The round whose rate is the median: its statements, per 1,000 requests and µs a request.
      const mid = xs.find((x) => x.r.okRps === rps)!;
      summary[v.name] = {
        paidPerSec: round1(rps),
        perRound: xs.map((x) => round1(x.r.okRps)),
        vsPlain: Number((rps / plainRps).toFixed(3)),
        ...(v.name.startsWith('two') || v.name === 'one leveldb'
          ? { vsOne: Number((rps / oneRps).toFixed(3)) }
          : {}),
        p50: med(xs.map((x) => x.r.p50)),
        p99: med(xs.map((x) => x.r.p99)),
        non2xx: xs.map((x) => x.r.non2xx),
        errors: xs.map((x) => x.r.errors),
        cpuUsPerRequest: cpu,
        dbCommitsPerRequest: Number(med(xs.map((x) => x.db.commits / Math.max(1, x.r.total))).toFixed(3)),
        topStatements: mid.db.statements.map((s) => ({
          perThousandRequests: round1((s.calls / Math.max(1, mid.r.total)) * 1000),
          usPerRequest: Number(((s.ms * 1000) / Math.max(1, mid.r.total)).toFixed(2)),
          query: s.query,
        })),
        loadAverage: round1(med(xs.map((x) => x.r.load))),
      };
    }
    out[svc] = summary;
    console.error(
      `[bench] ${svc}: one leveldb ${round1(medianOf('one leveldb'))} paid/s, one ${round1(oneRps)}, two sticky ${round1(medianOf('two sticky'))} ` +
        `(${(medianOf('two sticky') / oneRps).toFixed(2)}x one), two spread ${round1(medianOf('two spread'))} ` +
        `(${(medianOf('two spread') / oneRps).toFixed(2)}x one), plain ${round1(plainRps)}`,
    );
  }
  console.log(JSON.stringify(out, null, 1));
  for (const child of [...procs.live]) await procs.stop(child);
}

runBench(main, network, values.keep!, async () => {
  procs.killAll();
  await admin?.end({ timeout: 5 }).catch(() => undefined);
  // Stops the server and removes its directory (a server never started: the directory only).
  if (server) await server.stop();
  else rmSync(pgDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});
