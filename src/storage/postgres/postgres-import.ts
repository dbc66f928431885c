import postgres, { type Sql, type TransactionSql } from 'postgres';
import type { Logger } from 'pino';
import type { StoredRecord } from '../../ledger/store.js';
import {
  ExportReader,
  StoreMoveError,
  type ExportHeader,
  type ExportItem,
  type ExportKind,
  type ExportSummary,
} from '../export/format.js';
import { assertSameState, summarize } from '../export/move.js';
import { migrate, SEED_DEVICE_COUNTERS } from './migrations.js';
import {
  accountOf,
  journalOf,
  transferOf,
  type AccountRow,
  type JournalRow,
  type TransferRow,
} from './postgres-rows.js';

/** Rows written per INSERT (one unnest statement per kind and batch). */
const BATCH = 1000;

/** The tables an import fills; every one must be empty before. */
const LEDGER_TABLES = [
  'ledger_accounts',
  'ledger_transfers',
  'ledger_keys',
  'ledger_journal',
  'ledger_records',
];

/** Serialises imports into one database (any fixed bigint): 'cimport' in ASCII. */
const IMPORT_LOCK_KEY = 0x63696d706f7274n;

async function hasCursorTable(sql: Sql | TransactionSql): Promise<boolean> {
  const [r] = await sql<{ t: string | null }[]>`SELECT to_regclass('duty_cursors')::text AS t`;
  return r?.t != null;
}

/**
 * Imports an export into PostgreSQL, all or nothing: the migrations are applied first, then one
 * transaction checks that the ledger tables are empty (STORE_TARGET_NOT_EMPTY), streams the
 * file's items into them in batches of BATCH rows, checks the trailer (a truncated or corrupt file
 * raises and rolls everything back) and sets the journal's seq after the last imported one. Only
 * the current batch is in memory. Rows are written as they are in the file (balances included),
 * not through the ledger's commit function: the state is copied, not replayed.
 */
export async function importExport(
  sql: Sql,
  lines: AsyncIterable<string>,
  log: Logger,
): Promise<{ header: ExportHeader; summary: ExportSummary }> {
  await migrate(sql);
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${IMPORT_LOCK_KEY.toString()}::bigint)`;
    const cursors = await hasCursorTable(tx);
    const tables = cursors ? [...LEDGER_TABLES, 'duty_cursors'] : LEDGER_TABLES;
    for (const t of tables) {
      const rows = await tx.unsafe(`SELECT 1 FROM ${t} LIMIT 1`);
      if (rows.length > 0)
        throw new StoreMoveError(
          'STORE_TARGET_NOT_EMPTY',
          `the target database is not empty (${t} has rows): import only into a new database`,
          { table: t },
        );
    }
    const reader = new ExportReader();
    const batches = new Batches(tx, cursors);
    let n = 0;
    for await (const text of lines) {
      if (text === '') continue;
      const item = reader.line(text);
      if (item === undefined) continue;
      await batches.add(item);
      n += 1;
      if (n % 100_000 === 0) log.info({ items: n }, 'importing');
    }
    const done = reader.finish();
    await batches.flush();
    // The devices' counters start where their records stand (a replayed request stays refused).
    await tx.unsafe(SEED_DEVICE_COUNTERS);
    await tx`SELECT setval(pg_get_serial_sequence('ledger_journal', 'seq'),
      coalesce((SELECT max(seq) FROM ledger_journal), 0) + 1, false)`;
    return done;
  });
}

/** Items buffered per kind, written a batch at a time with one unnest INSERT each. */
class Batches {
  private readonly pending = new Map<ExportKind, ExportItem[]>();

  constructor(
    private readonly tx: TransactionSql,
    private readonly cursors: boolean,
  ) {}

  async add(item: ExportItem): Promise<void> {
    if (item.k === 'cursor' && !this.cursors)
      throw new StoreMoveError(
        'STORE_TARGET_NO_CURSOR_TABLE',
        'the export holds a duty cursor but the target database has no duty_cursors table: ' +
          'import with a gateway whose schema has it',
      );
    const list = this.pending.get(item.k) ?? [];
    list.push(item);
    this.pending.set(item.k, list);
    if (list.length >= BATCH) await this.write(item.k, list.splice(0));
  }

  async flush(): Promise<void> {
    for (const [kind, list] of this.pending) if (list.length > 0) await this.write(kind, list.splice(0));
  }

  private async write(kind: ExportKind, items: ExportItem[]): Promise<void> {
    const tx = this.tx;
    const of = <K extends ExportKind>(k: K): Extract<ExportItem, { k: K }>[] =>
      items.filter((i): i is Extract<ExportItem, { k: K }> => i.k === k);
    const opt = <T>(v: T | undefined): T | null => (v === undefined ? null : v);
    switch (kind) {
      case 'account': {
        const xs = of('account');
        const a = xs.map((x) => x.account);
        await tx.unsafe(
          `INSERT INTO ledger_accounts (id, kind, name, allow_negative, frozen, credits_posted, debits_posted,
             credits_pending, debits_pending, created_at, spend)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::boolean[], $6::numeric[],
             $7::numeric[], $8::numeric[], $9::numeric[], $10::bigint[], $11::text[])`,
          [
            a.map((x) => x.id),
            a.map((x) => x.kind),
            a.map((x) => x.name),
            a.map((x) => x.allowNegative),
            a.map((x) => x.frozen),
            a.map((x) => x.creditsPosted.toString()),
            a.map((x) => x.debitsPosted.toString()),
            a.map((x) => x.creditsPending.toString()),
            a.map((x) => x.debitsPending.toString()),
            a.map((x) => String(x.createdAt)),
            xs.map((x) => (x.spend === undefined ? null : JSON.stringify(x.spend))),
          ],
        );
        return;
      }
      case 'transfer': {
        const t = of('transfer').map((x) => x.transfer);
        await tx.unsafe(
          `INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, state, code, memo,
             idempotency_key, advanced, spent_at, timeout_at, created_at, resolved_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::text[], $6::text[],
             $7::text[], $8::text[], $9::numeric[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])`,
          [
            t.map((x) => x.id),
            t.map((x) => x.debitAccountId),
            t.map((x) => x.creditAccountId),
            t.map((x) => x.amount.toString()),
            t.map((x) => x.state),
            t.map((x) => x.code),
            t.map((x) => opt(x.memo)),
            t.map((x) => opt(x.idempotencyKey)),
            t.map((x) => (x.advanced === undefined ? null : x.advanced.toString())),
            t.map((x) => opt(x.spentAt)),
            t.map((x) => opt(x.timeoutAt)),
            t.map((x) => x.createdAt),
            t.map((x) => opt(x.resolvedAt)),
          ],
        );
        return;
      }
      case 'key': {
        const k = of('key');
        await tx.unsafe(
          `INSERT INTO ledger_keys (key, transfer_id, fingerprint, at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])`,
          [k.map((x) => x.key), k.map((x) => x.transferId), k.map((x) => x.fingerprint), k.map((x) => x.at)],
        );
        return;
      }
      case 'journal': {
        const e = of('journal').map((x) => x.entry);
        // The per-account index as parallel arrays: one row per (entry, distinct account).
        const seqs: number[] = [];
        const accts: string[] = [];
        for (const x of e)
          for (const a of new Set(x.accountIds)) {
            seqs.push(x.seq);
            accts.push(a);
          }
        await tx.unsafe(
          `INSERT INTO ledger_journal (seq, at, type, account_ids, transfer_id, amount, detail)
           OVERRIDING SYSTEM VALUE
           SELECT seq, at, type, string_to_array(ids, chr(1)), transfer_id, amount, detail
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
             AS j(seq, at, type, ids, transfer_id, amount, detail)`,
          [
            e.map((x) => x.seq),
            e.map((x) => x.at),
            e.map((x) => x.type),
            // Arrays of arrays must be rectangular in PostgreSQL: each entry's ids joined by \x01.
            e.map((x) => x.accountIds.join('\u0001')),
            e.map((x) => opt(x.transferId)),
            e.map((x) => opt(x.amount)),
            e.map((x) => opt(x.detail)),
          ],
        );
        await tx.unsafe(
          `INSERT INTO ledger_journal_accounts (account_id, seq)
           SELECT * FROM unnest($1::text[], $2::bigint[])`,
          [accts, seqs],
        );
        return;
      }
      case 'record': {
        const r = of('record');
        await tx.unsafe(
          `INSERT INTO ledger_records (key, value) SELECT * FROM unnest($1::text[], $2::text[])`,
          [r.map((x) => x.key), r.map((x) => x.value)],
        );
        return;
      }
      case 'cursor': {
        const c = of('cursor');
        await tx.unsafe(
          `INSERT INTO duty_cursors (name, add_index, settle_index)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])`,
          [c.map((x) => x.name), c.map((x) => x.addIndex), c.map((x) => x.settleIndex)],
        );
        return;
      }
    }
  }
}

/**
 * Everything the PostgreSQL store holds, in the export's order (see format.ts), read by keyset
 * pages of BATCH rows: what `verify` digests to compare with an export or a LevelDB store.
 */
export async function* postgresItems(sql: Sql): AsyncGenerator<ExportItem> {
  for (let after = ''; ;) {
    const rows = await sql<AccountRow[]>`
      SELECT * FROM ledger_accounts WHERE id > ${after} ORDER BY id LIMIT ${BATCH}`;
    for (const r of rows) {
      const { account, spend } = accountOf(r);
      yield spend === undefined ? { k: 'account', account } : { k: 'account', account, spend };
    }
    if (rows.length < BATCH) break;
    after = rows[rows.length - 1]!.id;
  }
  for (let after = ''; ;) {
    const rows = await sql<TransferRow[]>`
      SELECT * FROM ledger_transfers WHERE id > ${after} ORDER BY id LIMIT ${BATCH}`;
    for (const r of rows) yield { k: 'transfer', transfer: transferOf(r) };
    if (rows.length < BATCH) break;
    after = rows[rows.length - 1]!.id;
  }
  for (let after = ''; ;) {
    const rows = await sql<{ key: string; transfer_id: string; fingerprint: string; at: string }[]>`
      SELECT * FROM ledger_keys WHERE key > ${after} ORDER BY key LIMIT ${BATCH}`;
    for (const r of rows)
      yield { k: 'key', key: r.key, transferId: r.transfer_id, fingerprint: r.fingerprint, at: Number(r.at) };
    if (rows.length < BATCH) break;
    after = rows[rows.length - 1]!.key;
  }
  for (let after = 0; ;) {
    const rows = await sql<JournalRow[]>`
      SELECT * FROM ledger_journal WHERE seq > ${after} ORDER BY seq LIMIT ${BATCH}`;
    for (const r of rows) yield { k: 'journal', entry: journalOf(r) };
    if (rows.length < BATCH) break;
    after = Number(rows[rows.length - 1]!.seq);
  }
  for (let after = ''; ;) {
    const rows = await sql<StoredRecord[]>`
      SELECT key, value FROM ledger_records WHERE key > ${after} ORDER BY key LIMIT ${BATCH}`;
    for (const r of rows) yield { k: 'record', key: r.key, value: r.value };
    if (rows.length < BATCH) break;
    after = rows[rows.length - 1]!.key;
  }
  if (await hasCursorTable(sql)) {
    const rows = await sql<{ name: string; add_index: string; settle_index: string }[]>`
      SELECT name, add_index, settle_index FROM duty_cursors ORDER BY name`;
    for (const r of rows)
      yield { k: 'cursor', name: r.name, addIndex: Number(r.add_index), settleIndex: Number(r.settle_index) };
  }
}

/** A short-lived connection for the store commands (two connections, notices silenced). */
async function withDatabase<T>(url: string, run: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = postgres(url, { max: 2, onnotice: () => undefined });
  try {
    return await run(sql);
  } finally {
    await sql.end();
  }
}

/**
 * `coulomb store import`: imports the export (all or nothing, see `importExport`), then reads the
 * whole target back and compares its counts and digests per kind with the file's trailer
 * (STORE_VERIFY_MISMATCH). Returns the target's summary.
 */
export function importIntoPostgres(
  url: string,
  lines: AsyncIterable<string>,
  log: Logger,
): Promise<ExportSummary> {
  return withDatabase(url, async (sql) => {
    const { summary } = await importExport(sql, lines, log);
    const target = await summarize(postgresItems(sql));
    assertSameState(summary, target);
    return target;
  });
}

/** The PostgreSQL store's counts and digests per kind (`coulomb store verify`). */
export function summarizePostgres(url: string): Promise<ExportSummary> {
  return withDatabase(url, (sql) => summarize(postgresItems(sql)));
}
