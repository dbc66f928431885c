/**
 * Internal transfers per second with durable group commit (LevelDB, fsync per batch), against a
 * baseline in the same run: the same transfers awaited one by one (one fsync each).
 *
 *   npm run bench:ledger [-- --transfers 200000 --accounts 1000 --inflight 20000 --only service]
 *   npm run bench:ledger -- --before <checkout with the other build's dist/> [--rounds 6]
 *
 * With `--before`, each round runs the group commit and the service path once per build, each in
 * its own process, alternating the order (A B, B A, ...), and prints every round's rates and CPU
 * µs per operation, the medians per build and their ratios (new / before): CPU per operation is
 * the figure to compare on a loaded machine. `--dist <dir>` runs the modules of another build.
 *
 * The gateway's modules are the compiled ones from dist/ (the npm script builds them first), as
 * `npm start` runs them: under tsx, its keep-names wrappers cost CPU per call that compiled code
 * does not pay. `--only grouped|one-by-one|service` runs one variant (for profiling:
 * `node --cpu-prof --import tsx bench/ledger-transfers.ts --only service`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Ledger } from '../src/ledger/ledger.js';
import { FakeLightning } from '../test/support/fake-lightning.js';

const { values } = parseArgs({
  options: {
    transfers: { type: 'string', default: '200000' },
    accounts: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '20000' },
    baseline: { type: 'string', default: '2000' },
    only: { type: 'string' },
    dist: { type: 'string' },
    before: { type: 'string' },
    rounds: { type: 'string', default: '6' },
  },
});
const DIST =
  values.dist !== undefined ? resolve(values.dist) : fileURLToPath(new URL('../dist', import.meta.url));
const compiled = <T>(path: string): Promise<T> => import(pathToFileURL(join(DIST, path)).href) as Promise<T>;

if (values.before !== undefined) {
  await compare(resolve(values.before, 'dist'), Number(values.rounds));
  process.exit(0);
}

/** One variant of one build in its own process; its JSON line. */
function runOne(dist: string, only: 'grouped' | 'service'): Record<string, number> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--only', only, '--dist', dist];
  for (const k of ['transfers', 'accounts', 'inflight'] as const) args.push(`--${k}`, values[k]);
  const out = execFileSync(process.execPath, args, { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
}

/** Rounds of both builds alternated (A B, B A, ...): per-round figures, medians and ratios. */
async function compare(beforeDist: string, rounds: number): Promise<void> {
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  };
  const builds = { before: beforeDist, new: DIST } as const;
  const keys = {
    grouped: ['groupCommitPerSec', 'groupCommitCpuUsPerOp'],
    service: ['viaPaymentsServicePerSec', 'viaPaymentsServiceCpuUsPerOp'],
  } as const;
  const got: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? (['before', 'new'] as const) : (['new', 'before'] as const);
    for (const variant of ['grouped', 'service'] as const) {
      for (const build of order) {
        const res = runOne(builds[build], variant);
        const [rate, cpu] = keys[variant];
        (got[`${variant}.${build}.rate`] ??= []).push(res[rate]!);
        (got[`${variant}.${build}.cpu`] ??= []).push(res[cpu]!);
        console.log(
          JSON.stringify({ round: r + 1, variant, build, perSec: res[rate], cpuUsPerOp: res[cpu] }),
        );
      }
    }
  }
  const summary: Record<string, number> = {};
  for (const variant of ['grouped', 'service'] as const) {
    for (const build of ['before', 'new'] as const) {
      summary[`${variant}.${build}.perSecMedian`] = Math.round(median(got[`${variant}.${build}.rate`]!));
      summary[`${variant}.${build}.cpuUsPerOpMedian`] = Number(
        median(got[`${variant}.${build}.cpu`]!).toFixed(1),
      );
    }
    summary[`${variant}.rateRatio`] = Number(
      (summary[`${variant}.new.perSecMedian`]! / summary[`${variant}.before.perSecMedian`]!).toFixed(3),
    );
    summary[`${variant}.cpuRatio`] = Number(
      (summary[`${variant}.new.cpuUsPerOpMedian`]! / summary[`${variant}.before.cpuUsPerOpMedian`]!).toFixed(
        3,
      ),
    );
  }
  console.log(JSON.stringify({ rounds, ...summary }));
}
const { DEFAULTS } = await compiled<typeof import('../src/config/load.js')>('config/load.js');
const { msat } = await compiled<typeof import('../src/domain/msat.js')>('domain/msat.js');
const { Ledger: CompiledLedger } =
  await compiled<typeof import('../src/ledger/ledger.js')>('ledger/ledger.js');
const { openAccounts } = await compiled<typeof import('../src/main.js')>('main.js');
const { tierPolicy } = await compiled<typeof import('../src/policy/tiers.js')>('policy/tiers.js');
const { openDatabase } = await compiled<typeof import('../src/storage/level-db.js')>('storage/level-db.js');
const { LevelLedgerStore } = await compiled<typeof import('../src/storage/level-ledger-store.js')>(
  'storage/level-ledger-store.js',
);

const N = Number(values.transfers);
const A = Number(values.accounts);
const INFLIGHT = Number(values.inflight);
const BASELINE = Number(values.baseline);

async function withLedger<T>(fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-bench-'));
  const db = await openDatabase(dir);
  const ledger = await CompiledLedger.open(new LevelLedgerStore(db));
  try {
    return await fn(ledger);
  } finally {
    await ledger.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function setup(ledger: Ledger): Promise<string[]> {
  ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
  const ids = Array.from({ length: A }, (_, i) => `acct-${i}`);
  for (const id of ids) ledger.createAccount({ id, kind: 'agent', name: id });
  for (const id of ids)
    ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: id,
      amount: msat(10n ** 12n),
      code: 'funding',
    });
  await ledger.flush();
  return ids;
}

const pick = (ids: string[], i: number): [string, string] => [
  ids[i % ids.length]!,
  ids[(i * 7 + 1) % ids.length]!,
];

async function grouped(): Promise<{ perSec: number; batches: number; cpuUsPerOp: number }> {
  return withLedger(async (ledger) => {
    const ids = await setup(ledger);
    const before = ledger.batchesWritten;
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (let done = 0; done < N; done += INFLIGHT) {
      const wave: Promise<void>[] = [];
      for (let i = done; i < Math.min(N, done + INFLIGHT); i++) {
        const [from, to] = pick(ids, i);
        wave.push(
          ledger.transfer({
            debitAccountId: from,
            creditAccountId: to === from ? 'world' : to,
            amount: msat(1000),
            code: 'transfer',
          }).durable,
        );
      }
      await Promise.all(wave);
    }
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    return {
      perSec: N / secs,
      batches: ledger.batchesWritten - before,
      cpuUsPerOp: (used.user + used.system) / N,
    };
  });
}

async function oneByOne(): Promise<number> {
  return withLedger(async (ledger) => {
    const ids = await setup(ledger);
    const start = process.hrtime.bigint();
    for (let i = 0; i < BASELINE; i++) {
      const [from, to] = pick(ids, i);
      await ledger.transfer({
        debitAccountId: from,
        creditAccountId: to === from ? 'world' : to,
        amount: msat(1000),
        code: 'transfer',
      }).durable;
    }
    return BASELINE / (Number(process.hrtime.bigint() - start) / 1e9);
  });
}

/** The same through the payments service: policy check, audit record and transfer per call. */
async function throughService(): Promise<{ perSec: number; cpuUsPerOp: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-bench-svc-'));
  const stack = await openAccounts(
    { ...DEFAULTS, dataDir: dir },
    new FakeLightning(),
    pino({ level: 'silent' }),
  );
  const s = stack.services;
  const ids = Array.from({ length: A }, (_, i) => `svc-${i}`);
  for (const id of ids) s.ledger.createAccount({ id, kind: 'agent', name: id });
  for (const id of ids)
    s.ledger.transfer({
      debitAccountId: 'sys:operator',
      creditAccountId: id,
      amount: msat(10n ** 12n),
      code: 'funding',
    });
  await Promise.all(ids.map((id) => s.policies.set(id, tierPolicy('L3'))));
  const n = Math.min(N, 100_000);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let done = 0; done < n; done += INFLIGHT) {
    const wave: Promise<unknown>[] = [];
    for (let i = done; i < Math.min(n, done + INFLIGHT); i++) {
      const [from, to] = pick(ids, i);
      if (from !== to) wave.push(s.payments.transfer(from, to, msat(1000), ''));
    }
    await Promise.all(wave);
  }
  const perSec = n / (Number(process.hrtime.bigint() - start) / 1e9);
  const used = process.cpuUsage(cpu);
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
  return { perSec, cpuUsPerOp: (used.user + used.system) / n };
}

const only = values.only;
const us = (x: number): number => Number(x.toFixed(1));
if (only === 'grouped') {
  const group = await grouped();
  console.log(
    JSON.stringify({
      transfers: N,
      groupCommitPerSec: Math.round(group.perSec),
      groupCommitCpuUsPerOp: us(group.cpuUsPerOp),
      batches: group.batches,
    }),
  );
} else if (only === 'one-by-one') {
  console.log(JSON.stringify({ transfers: BASELINE, oneFsyncEachPerSec: Math.round(await oneByOne()) }));
} else if (only === 'service') {
  const svc = await throughService();
  console.log(
    JSON.stringify({
      transfers: Math.min(N, 100_000),
      viaPaymentsServicePerSec: Math.round(svc.perSec),
      viaPaymentsServiceCpuUsPerOp: us(svc.cpuUsPerOp),
    }),
  );
} else {
  const base = await oneByOne();
  const group = await grouped();
  const svc = await throughService();
  console.log(
    JSON.stringify({
      transfers: N,
      accounts: A,
      inflight: INFLIGHT,
      groupCommitPerSec: Math.round(group.perSec),
      groupCommitCpuUsPerOp: us(group.cpuUsPerOp),
      batches: group.batches,
      transfersPerBatch: Math.round(N / group.batches),
      oneFsyncEachPerSec: Math.round(base),
      ratio: Number((group.perSec / base).toFixed(1)),
      viaPaymentsServicePerSec: Math.round(svc.perSec),
      viaPaymentsServiceCpuUsPerOp: us(svc.cpuUsPerOp),
    }),
  );
}
