/**
 * 10,000 concurrent intra-gateway 1 Hz streams on LevelDB (fsync per batch): per-stream tick lag
 * (advance applied − the tick's scheduled time), lag until durable, batches per tick, tick
 * duration, and the drift of what the payees received against the closed-form total (must be 0).
 * Baseline in the same run: the same 10,000 moves a second as plain posted `ledger.transfer`s.
 *
 *   npx tsx bench/streams-local.ts [--seconds 30 --streams 10000 --payees 100 --chunk-seconds 60]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { msat, type Msat } from '../src/domain/msat.js';
import { Ledger } from '../src/ledger/ledger.js';
import { balanceOf } from '../src/ledger/types.js';
import { EventBus } from '../src/payments/events.js';
import { OPERATOR_ACCOUNT } from '../src/ledger/system-accounts.js';
import { PaymentsService } from '../src/payments/service.js';
import { AuditLog } from '../src/policy/audit.js';
import { PolicyRegistry } from '../src/policy/registry.js';
import { tierPolicy } from '../src/policy/tiers.js';
import { openDatabase } from '../src/storage/level-db.js';
import { LevelLedgerStore } from '../src/storage/level-ledger-store.js';
import { accruedMsat } from '../src/streams/accrual.js';
import { systemClock, Ticker } from '../src/streams/clock.js';
import { StreamsService } from '../src/streams/service.js';
import type { TickStats } from '../src/streams/types.js';
import { FakeLightning } from '../test/support/fake-lightning.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    streams: { type: 'string', default: '10000' },
    payees: { type: 'string', default: '100' },
    'chunk-seconds': { type: 'string', default: '60' },
  },
});
const SECONDS = Number(values.seconds);
const STREAMS = Number(values.streams);
const PAYEES = Number(values.payees);
const CHUNK_SECONDS = Number(values['chunk-seconds']);
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Rational rates, all moving something every second: 1 sat/s, 1 sat/min, 7 msat/3 s, odd ones. */
const RATES: { rateMsat: Msat; perSeconds: number }[] = [
  { rateMsat: msat(1000), perSeconds: 1 },
  { rateMsat: msat(1000), perSeconds: 60 },
  { rateMsat: msat(7), perSeconds: 3 },
  { rateMsat: msat(123_457), perSeconds: 7 },
];

interface Run {
  lags: number[];
  durableLags: number[];
  tickMs: number[];
  batchesPerTick: number[];
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const max = (xs: number[]): number => xs.reduce((m, x) => (x > m ? x : m), -Infinity);
const ms = (x: number): string => `${x.toFixed(2)} ms`;

async function stack(label: string) {
  const dir = mkdtempSync(join(tmpdir(), `coulomb-bench-streams-${label}-`));
  const db = await openDatabase(dir);
  const ledger = await Ledger.open(new LevelLedgerStore(db));
  const policies = new PolicyRegistry(ledger);
  const payments = new PaymentsService(
    ledger,
    new FakeLightning(),
    policies,
    new AuditLog(ledger),
    new EventBus(),
    silent,
    { reconcileIntervalMs: 3600_000 },
  );
  await payments.start();
  const payers = Array.from({ length: STREAMS }, (_, i) => `payer-${i}`);
  const payees = Array.from({ length: PAYEES }, (_, i) => `payee-${i}`);
  for (const id of [...payers, ...payees]) ledger.createAccount({ id, kind: 'agent', name: id });
  for (const id of payers)
    ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: id,
      amount: msat(10n ** 12n),
      code: 'funding',
    });
  await Promise.all(payers.map((id) => policies.set(id, tierPolicy('L3'))));
  await ledger.flush();
  return {
    ledger,
    payments,
    payers,
    payees,
    async close() {
      payments.stop();
      await ledger.close();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (msecs: number) => new Promise((r) => setTimeout(r, msecs));

async function streams(): Promise<
  Run & { drift: bigint; expected: bigint; activeSeconds: [number, number] }
> {
  const s = await stack('streams');
  const run: Run = { lags: [], durableLags: [], tickMs: [], batchesPerTick: [] };
  let lastBatches = -1;
  let measuring = false;
  const onTick = (t: TickStats): void => {
    // Only ticks after every stream exists (creation is one big batch of its own).
    if (!measuring) return;
    for (const lag of t.lagsMs) run.lags.push(lag);
    run.tickMs.push(t.finishedAt - t.startedAt);
    const batches = s.ledger.batchesWritten;
    if (lastBatches >= 0) run.batchesPerTick.push(batches - lastBatches);
    lastBatches = batches;
    void t.durable.then(() => run.durableLags.push(systemClock.now() - t.scheduledAt));
  };
  const service = new StreamsService({
    ledger: s.ledger,
    payments: s.payments,
    publish: () => undefined,
    log: silent,
    onTick,
    options: { chunkSeconds: CHUNK_SECONDS },
  });
  await service.start();
  const created = await Promise.all(
    s.payers.map((payer, i) =>
      service.create(payer, { payee: { accountId: s.payees[i % PAYEES]! }, ...RATES[i % RATES.length]! }),
    ),
  );
  measuring = true;
  await sleep(SECONDS * 1000 + 300);
  measuring = false;
  const stopped = await Promise.all(created.map((c) => service.stop(c.id)));
  await service.stop();
  let expected = 0n;
  let minSecs = Infinity;
  let maxSecs = 0;
  for (const [i, st] of stopped.entries()) {
    const r = RATES[i % RATES.length]!;
    expected += accruedMsat({ kind: 'time', ...r }, {}, st.activeSeconds, 0n);
    minSecs = Math.min(minSecs, st.activeSeconds);
    maxSecs = Math.max(maxSecs, st.activeSeconds);
  }
  const received = s.payees.reduce((sum, id) => sum + balanceOf(s.ledger.accountNow(id)!), 0n);
  await s.close();
  return { ...run, drift: received - expected, expected, activeSeconds: [minSecs, maxSecs] };
}

/** The same moves as plain posted transfers, one synchronous loop a second on the same grid. */
async function baseline(): Promise<Run> {
  const s = await stack('baseline');
  const run: Run = { lags: [], durableLags: [], tickMs: [], batchesPerTick: [] };
  let lastBatches = -1;
  let second = 0;
  const ticker = new Ticker(systemClock, 1000, (scheduledAt) => {
    second += 1;
    const startedAt = systemClock.now();
    let durable: Promise<void> | undefined;
    for (let i = 0; i < s.payers.length; i++) {
      const r = RATES[i % RATES.length]!;
      const rate = { kind: 'time' as const, ...r };
      const due = accruedMsat(rate, {}, second, 0n) - accruedMsat(rate, {}, second - 1, 0n);
      durable = s.ledger.transfer({
        debitAccountId: s.payers[i]!,
        creditAccountId: s.payees[i % PAYEES]!,
        amount: msat(due),
        code: 'transfer',
      }).durable;
      run.lags.push(systemClock.now() - scheduledAt);
    }
    run.tickMs.push(systemClock.now() - startedAt);
    const batches = s.ledger.batchesWritten;
    if (lastBatches >= 0) run.batchesPerTick.push(batches - lastBatches);
    lastBatches = batches;
    void durable?.then(() => run.durableLags.push(systemClock.now() - scheduledAt));
  });
  ticker.start();
  await sleep(SECONDS * 1000 + 300);
  ticker.stop();
  await s.ledger.flush();
  await s.close();
  return run;
}

function report(label: string, r: Run): void {
  console.log(`${label} tick lag applied p50: ${ms(pct(r.lags, 50))}`);
  console.log(`${label} tick lag applied p99: ${ms(pct(r.lags, 99))}`);
  console.log(`${label} tick lag applied max: ${ms(max(r.lags))}`);
  console.log(`${label} lag until durable p99: ${ms(pct(r.durableLags, 99))}`);
  console.log(`${label} tick duration p50: ${ms(pct(r.tickMs, 50))}`);
  console.log(`${label} tick duration p99: ${ms(pct(r.tickMs, 99))}`);
  const batches = r.batchesPerTick.reduce((a, b) => a + b, 0) / Math.max(1, r.batchesPerTick.length);
  console.log(`${label} batches written per tick: ${batches.toFixed(2)} (max ${max(r.batchesPerTick)})`);
}

console.log(`streams: ${STREAMS}, payees: ${PAYEES}, seconds: ${SECONDS}, chunk: ${CHUNK_SECONDS} s`);
const base = await baseline();
const st = await streams();
console.log(`streams moves applied: ${st.lags.length}`);
report('streams', st);
console.log(`streams active seconds per stream: ${st.activeSeconds[0]}..${st.activeSeconds[1]}`);
console.log(`streams expected total: ${st.expected} msat`);
console.log(`streams drift (payees received - closed form): ${st.drift} msat`);
console.log(`baseline moves applied: ${base.lags.length}`);
report('baseline', base);
console.log(`ratio tick lag p99 (streams / baseline): ${(pct(st.lags, 99) / pct(base.lags, 99)).toFixed(2)}`);
console.log(
  `ratio tick duration p50 (streams / baseline): ${(pct(st.tickMs, 50) / pct(base.tickMs, 50)).toFixed(2)}`,
);
console.log(
  `ratio lag until durable p99 (streams / baseline): ${(pct(st.durableLags, 99) / pct(base.durableLags, 99)).toFixed(2)}`,
);
process.exit(st.drift === 0n ? 0 : 1);
