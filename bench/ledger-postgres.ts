/**
 * Durable internal transfers per second on the PostgreSQL ledger store against the LevelDB one,
 * measured in the same run on this machine (a PostgreSQL 15 server started here, fsync on), and
 * the mechanism the store uses against the alternative it was chosen over:
 *
 *   - LevelDB: the embedded default (group commit, one fsync'd batch at a time);
 *   - PostgreSQL, batched: the ledger's group commit, each batch one call of the store's commit
 *     function (sorted row locks, aggregated balance deltas under CHECK constraints, unnest inserts);
 *   - PostgreSQL, per transfer: one transaction per transfer, a conditional UPDATE
 *     (`... WHERE available >= amount`) on each side plus the transfer's INSERT, 20 at a time.
 *
 *   npm run bench:ledger-postgres [-- --transfers 50000 --accounts 1000 --inflight 5000 --single 4000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { msat } from '../src/domain/msat.js';
import { Ledger } from '../src/ledger/ledger.js';
import type { LedgerStore } from '../src/ledger/store.js';
import { openDatabase } from '../src/storage/level-db.js';
import { LevelLedgerStore } from '../src/storage/level-ledger-store.js';
import { PostgresLedgerStore } from '../src/storage/postgres/postgres-ledger-store.js';
import { createTestDatabase, startPostgres } from '../test/support/postgres.js';

const { values } = parseArgs({
  options: {
    transfers: { type: 'string', default: '50000' },
    accounts: { type: 'string', default: '1000' },
    inflight: { type: 'string', default: '5000' },
    single: { type: 'string', default: '4000' },
    port: { type: 'string' },
  },
});
const N = Number(values.transfers);
const A = Number(values.accounts);
const INFLIGHT = Number(values.inflight);
const SINGLE = Number(values.single);

async function run(store: LedgerStore): Promise<{ perSecond: number; batches: number }> {
  const ledger = await Ledger.open(store);
  const ids = Array.from({ length: A }, (_, i) => `acct-${i}`);
  // Chosen ids are looked up first (a shared store may hold them already).
  await ledger.ensure({ accounts: ['world', ...ids] });
  ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
  for (const id of ids) ledger.createAccount({ id, kind: 'agent', name: id });
  // Every account is debited below: on PostgreSQL this instance takes their leases (held while used).
  await ledger.ensure({ spend: ids });
  for (const id of ids)
    ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: id,
      amount: msat(10n ** 12n),
      code: 'funding',
    });
  await ledger.flush();
  const before = ledger.batchesWritten;
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const i = next++;
      const from = ids[i % A]!;
      const to = ids[(i * 7 + 1) % A]!;
      await ledger.transfer({ debitAccountId: from, creditAccountId: to, amount: msat(1n), code: 'transfer' })
        .durable;
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  const batches = ledger.batchesWritten - before;
  await ledger.close();
  return { perSecond: N / seconds, batches };
}

/** One transaction per transfer: conditional UPDATEs on both accounts, then the transfer row. */
async function perTransfer(url: string): Promise<number> {
  const sql = postgres(url, { max: 10, onnotice: false });
  const ids = Array.from({ length: A }, (_, i) => `acct-${i}`);
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < SINGLE) {
      const i = next++;
      const from = ids[i % A]!;
      const to = ids[(i * 7 + 1) % A]!;
      await sql.begin(async (tx) => {
        const [first, second] = from < to ? [from, to] : [to, from];
        for (const id of [first, second]) {
          const debit = id === from;
          const rows = debit
            ? await tx`UPDATE ledger_accounts SET debits_posted = debits_posted + 1
                WHERE id = ${id} AND (allow_negative OR credits_posted - debits_posted - debits_pending >= 1)
                RETURNING id`
            : await tx`UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = ${id} RETURNING id`;
          if (rows.length === 0) throw new Error('insufficient funds');
        }
        await tx`INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, state, code,
                   created_at, resolved_at)
                 VALUES (${`single-${i}`}, ${from}, ${to}, 1, 'posted', 'transfer', ${Date.now()}, ${Date.now()})`;
      });
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  const seconds = (performance.now() - started) / 1000;
  await sql.end();
  return SINGLE / seconds;
}

const dir = mkdtempSync(join(tmpdir(), 'coulomb-bench-pg-'));
const server = await startPostgres({
  // Its own directory (the server, run as the postgres user, cannot enter the 0700 one above).
  dir: join(tmpdir(), `coulomb-bench-pg-${process.pid}`),
  ...(values.port !== undefined ? { port: Number(values.port) } : {}),
});
try {
  const levelDir = join(dir, 'level');
  const db = await openDatabase(levelDir);
  const level = await run(new LevelLedgerStore(db));
  await db.close();

  const url = await createTestDatabase(server.url, 'bench');
  const pg = await run(await PostgresLedgerStore.open(url, { max: 10 }));
  const single = await perTransfer(url);

  const f = (n: number): string => Math.round(n).toLocaleString('en-US');
  console.log(
    `durable internal transfers/s, ${f(N)} transfers between ${f(A)} accounts, ${f(INFLIGHT)} in flight:`,
  );
  console.log(`  LevelDB (baseline)                 ${f(level.perSecond)}/s  (${f(level.batches)} batches)`);
  console.log(
    `  PostgreSQL, group commit (chosen)  ${f(pg.perSecond)}/s  (${f(pg.batches)} batches)  ratio to LevelDB ${(pg.perSecond / level.perSecond).toFixed(2)}`,
  );
  console.log(
    `  PostgreSQL, a transaction per transfer (conditional UPDATE, 20 at a time, ${f(SINGLE)} transfers)  ${f(single)}/s  ratio to batched ${(single / pg.perSecond).toFixed(2)}`,
  );
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
