/**
 * Leader failover time: how long the gateway instances are without a leader when the leader dies,
 * in the ways a leader dies in production, against a clean handover measured in the same run.
 * Three instances (bench/leader-failover-instance.ts, each a Node process running the real
 * `AdvisoryLockLeader` with the production settings) on a PostgreSQL 15 server started here; in
 * each round, one run of every scenario, in turn:
 *
 *   - clean (baseline): the leader calls `close()`, which ends its session and releases the lock;
 *   - SIGKILL: the leader's process is killed (the kernel closes its socket);
 *   - terminated: the leader's backend is ended with `pg_terminate_backend`;
 *   - silent: every packet between the leader and the server is dropped from then on (its host
 *     cut off: neither side hears anything, no FIN, no RST), until another instance leads.
 *
 * The time is from the event (the leader starting `close()`, the kill, the terminate call, the
 * cut) until another instance reports it is elected. Each run waits until the instances are
 * settled and then a random 0-1 s more, so the event falls anywhere in the poll period.
 *
 * The silent cut needs the kernel to drop packets, which a TCP relay in user space cannot do (its
 * own kernel would answer the server's keepalives): the benchmark re-runs itself in a private
 * network namespace (`unshare --net`, root; test/support/private-network.ts), where each instance
 * reaches the server through a loopback address of its own and the cut drops the leader's. The
 * server and the instances live in that namespace and end with it.
 *
 *   npm run bench:failover [-- --runs 10 --instances 3 --give-up 60]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import postgres, { type Sql } from 'postgres';
import {
  createTestDatabase,
  gatewayDatabase,
  startPostgres,
  type RunningPostgres,
} from '../test/support/postgres.js';
import {
  clientAddress,
  cutOff,
  inPrivateNetwork,
  prepareLoopback,
  reconnect,
  rerunInPrivateNetwork,
} from '../test/support/private-network.js';
import type { InstanceReport } from './leader-failover-instance.js';

if (!inPrivateNetwork()) process.exit(rerunInPrivateNetwork());

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    instances: { type: 'string', default: '3' },
    'give-up': { type: 'string', default: '60' },
  },
});
const RUNS = Number(values.runs);
const INSTANCES = Number(values.instances);
const GIVE_UP_MS = Number(values['give-up']) * 1000;

type Scenario = 'clean' | 'sigkill' | 'terminated' | 'silent';
const SCENARIOS: readonly Scenario[] = ['clean', 'sigkill', 'terminated', 'silent'];
const LABELS: Record<Scenario, string> = {
  clean: 'clean handover: the leader calls `close()` (baseline)',
  sigkill: 'SIGKILL of the leader process',
  terminated: "the leader's backend ended (`pg_terminate_backend`)",
  silent: 'the leader cut off silently (all its packets dropped)',
};

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One instance process and what it reported. */
interface Instance {
  id: number;
  address: string;
  child: ChildProcess;
  readyAt: number | undefined;
  reports: InstanceReport[];
  exited: boolean;
}

class Cluster {
  readonly instances = new Map<number, Instance>();
  private nextId = 1;
  constructor(
    private readonly port: number,
    private readonly database: string,
  ) {}

  get leader(): Instance | undefined {
    for (const i of this.instances.values()) {
      const last = i.reports.filter((r) => r.kind === 'elected' || r.kind === 'deposed').at(-1);
      if (!i.exited && last?.kind === 'elected') return i;
    }
    return undefined;
  }

  spawn(): Instance {
    const id = this.nextId++;
    const address = clientAddress(id);
    const url = `postgres://postgres@${address}:${this.port}/${this.database}`;
    const child = fork(join(import.meta.dirname, 'leader-failover-instance.ts'), [url], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const instance: Instance = { id, address, child, readyAt: undefined, reports: [], exited: false };
    child.on('message', (m: InstanceReport) => {
      instance.reports.push(m);
      if (m.kind === 'ready') instance.readyAt = m.at;
    });
    child.on('exit', () => {
      instance.exited = true;
      this.instances.delete(id);
    });
    this.instances.set(id, instance);
    return instance;
  }

  /** Replaces exited instances, then waits until all have polled twice and one leads. */
  async settle(): Promise<Instance> {
    while (this.instances.size < INSTANCES) this.spawn();
    const deadline = Date.now() + GIVE_UP_MS;
    for (;;) {
      const all = [...this.instances.values()];
      const leader = this.leader;
      // Two poll periods after start, and the hold-off (3 polls) of a deposed leader, are over.
      const quiet = all.every((i) => i.readyAt !== undefined && now() - i.readyAt > 2000);
      const lastChange = Math.max(0, ...all.flatMap((i) => i.reports.map((r) => r.at)));
      if (leader && quiet && now() - lastChange > 3500) return leader;
      if (Date.now() > deadline) throw new Error('the instances did not settle with one leader');
      await sleep(100);
    }
  }

  /** The first `elected` from another instance than `old` at or after `since`. */
  async takeover(old: Instance, since: number): Promise<number | undefined> {
    const deadline = since + GIVE_UP_MS;
    for (;;) {
      for (const i of this.instances.values()) {
        if (i === old) continue;
        const e = i.reports.find((r) => r.kind === 'elected' && r.at >= since);
        if (e) return e.at - since;
      }
      if (now() > deadline) return undefined;
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    const exits = [...this.instances.values()].map(
      (i) => new Promise<void>((r) => (i.exited ? r() : i.child.once('exit', () => r()))),
    );
    for (const i of this.instances.values()) i.child.kill('SIGKILL');
    await Promise.all(exits);
  }
}

/** Runs one scenario against the current leader; the takeover time in ms (undefined: none). */
async function measure(scenario: Scenario, cluster: Cluster, admin: Sql): Promise<Measured> {
  const old = await cluster.settle();
  await sleep(Math.random() * 1000);
  let since: number;
  switch (scenario) {
    case 'clean': {
      const closing = new Promise<number>((resolve) =>
        old.child.on('message', (m: InstanceReport) => m.kind === 'closing' && resolve(m.at)),
      );
      old.child.send('close');
      since = await closing;
      break;
    }
    case 'sigkill':
      since = now();
      old.child.kill('SIGKILL');
      break;
    case 'terminated': {
      const [pid, ...more] = await gatewayDatabase(admin).leaderHolders();
      if (pid === undefined || more.length > 0) throw new Error('not exactly one leader lock holder');
      since = now();
      await admin`SELECT pg_terminate_backend(${pid})`;
      break;
    }
    case 'silent':
      since = now();
      cutOff(old.address);
      break;
  }
  const takeover = await cluster.takeover(old, since);
  const deposed = old.reports.find((r) => r.kind === 'deposed' && r.at >= since);
  if (scenario === 'silent') reconnect(old.address);
  return { takeover, stepDown: deposed === undefined ? undefined : deposed.at - since };
}

interface Measured {
  /** From the event until another instance is elected (ms); undefined when none within --give-up. */
  takeover: number | undefined;
  /** From the event until the old leader heard it was deposed (ms), when it lived to hear it. */
  stepDown: number | undefined;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(ms: (number | undefined)[]): { median: string; p95: string; max: string; median_: number } {
  const got = ms.filter((m): m is number => m !== undefined).sort((a, b) => a - b);
  const missing = ms.length - got.length;
  const s = (v: number): string => `${(v / 1000).toFixed(2)} s`;
  if (got.length === 0) return { median: 'none', p95: 'none', max: 'none', median_: NaN };
  const never = `> ${GIVE_UP_MS / 1000} s (${missing} of ${ms.length})`;
  const median = percentile(got, 50);
  return {
    median: s(median),
    p95: missing > 0 ? never : s(percentile(got, 95)),
    max: missing > 0 ? never : s(got.at(-1)!),
    median_: median,
  };
}

let server: RunningPostgres | undefined;
let cluster: Cluster | undefined;
let admin: Sql | undefined;
const stopAll = async (): Promise<void> => {
  await cluster?.stop();
  await admin?.end({ timeout: 1 });
  await server?.stop();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));

try {
  prepareLoopback();
  const loadBefore = loadavg();
  server = await startPostgres({
    dir: join(tmpdir(), `coulomb-bench-failover-${process.pid}`),
    // Only this namespace's loopback exists: the instances come through 127.0.1.<n>.
    listenAddresses: '0.0.0.0',
  });
  const url = await createTestDatabase(server.url, 'failover');
  admin = postgres(url, { max: 1, onnotice: false });
  cluster = new Cluster(server.port, new URL(url).pathname.slice(1));
  const results = new Map<Scenario, Measured[]>(SCENARIOS.map((s) => [s, []]));
  const started = new Date();
  for (let run = 1; run <= RUNS; run += 1) {
    for (const scenario of SCENARIOS) {
      const m = await measure(scenario, cluster, admin);
      results.get(scenario)!.push(m);
      const f = (v: number | undefined): string => (v === undefined ? '-' : `${(v / 1000).toFixed(2)} s`);
      console.error(
        `run ${run} ${scenario}: takeover ${f(m.takeover)}, old leader stepped down ${f(m.stepDown)}`,
      );
    }
  }
  const loadAfter = loadavg();
  const clean = summary(results.get('clean')!.map((m) => m.takeover));
  console.log(
    `leader failover, ${INSTANCES} instances, ${RUNS} runs per scenario, ${started.toISOString()}; ` +
      `load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')} before, ` +
      `${loadAfter.map((l) => l.toFixed(2)).join(' ')} after`,
  );
  console.log(
    '| how the leader stops | takeover median | p95 | max | median / clean | old leader stepped down (median) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const scenario of SCENARIOS) {
    const measured = results.get(scenario)!;
    const t = summary(measured.map((m) => m.takeover));
    const down = summary(measured.map((m) => m.stepDown));
    const ratio = scenario === 'clean' ? '1' : `${(t.median_ / clean.median_).toFixed(1)}x`;
    const stepDown = scenario === 'sigkill' ? '(killed)' : down.median;
    console.log(`| ${LABELS[scenario]} | ${t.median} | ${t.p95} | ${t.max} | ${ratio} | ${stepDown} |`);
  }
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await stopAll();
}
