/**
 * Internal transfers per second with durable group commit (LevelDB, fsync per batch), against a
 * baseline in the same run: the same transfers awaited one by one (one fsync each).
 *
 *   npm run bench:ledger [-- --transfers 200000 --accounts 1000 --inflight 20000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULTS } from '../src/config/load.js';
import { msat } from '../src/domain/msat.js';
import { Ledger } from '../src/ledger/ledger.js';
import { openAccounts } from '../src/main.js';
import { tierPolicy } from '../src/policy/tiers.js';
import { openDatabase } from '../src/storage/level-db.js';
import { LevelLedgerStore } from '../src/storage/level-ledger-store.js';
import { FakeLightning } from '../test/support/fake-lightning.js';

const { values } = parseArgs({
  options: {
    transfers: { type: 'string', default: '200000' },
    accounts: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '20000' },
    baseline: { type: 'string', default: '2000' },
  },
});
const N = Number(values.transfers);
const A = Number(values.accounts);
const INFLIGHT = Number(values.inflight);
const BASELINE = Number(values.baseline);

async function withLedger<T>(fn: (ledger: Ledger) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-bench-'));
  const db = await openDatabase(dir);
  const ledger = await Ledger.open(new LevelLedgerStore(db));
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

async function grouped(): Promise<{ perSec: number; batches: number }> {
  return withLedger(async (ledger) => {
    const ids = await setup(ledger);
    const before = ledger.batchesWritten;
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
    return { perSec: N / secs, batches: ledger.batchesWritten - before };
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
async function throughService(): Promise<number> {
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
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
  return perSec;
}

const base = await oneByOne();
const group = await grouped();
const svc = await throughService();
console.log(
  JSON.stringify({
    transfers: N,
    accounts: A,
    inflight: INFLIGHT,
    groupCommitPerSec: Math.round(group.perSec),
    batches: group.batches,
    transfersPerBatch: Math.round(N / group.batches),
    oneFsyncEachPerSec: Math.round(base),
    ratio: Number((group.perSec / base).toFixed(1)),
    viaPaymentsServicePerSec: Math.round(svc),
  }),
);
