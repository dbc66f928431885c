import postgres, { type Sql } from 'postgres';
import { AppError } from '../../domain/errors.js';
import type {
  AccountSearch,
  LedgerSnapshot,
  LedgerStore,
  LedgerWrite,
  StoredAccount,
  StoredKey,
  StoredRecord,
} from '../../ledger/store.js';
import type { JournalEntry, Transfer } from '../../ledger/types.js';
import { PostgresAccountLeases } from './postgres-account-leases.js';
import { migrate } from './migrations.js';
import {
  accountOf,
  journalOf,
  transferOf,
  type AccountRow,
  type JournalRow,
  type TransferRow,
} from './postgres-rows.js';

/**
 * What the database refused in a batch, whichever instance wrote the conflicting change first:
 * nothing of the batch landed. Codes are the ledger's (INSUFFICIENT_FUNDS, BALANCE_LIMIT_EXCEEDED,
 * TRANSFER_EXISTS, TRANSFER_NOT_PENDING, IDEMPOTENCY_CONFLICT).
 */
export class LedgerStoreConflict extends AppError {
  constructor(code: string, message: string) {
    super(code, message, 409);
  }
}

/** Above every character in byte (COLLATE "C") order: the end of a prefix range. */
const TOP = '\u{10ffff}';

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The batch's 38 arrays (see migrations.ts, LEDGER_COMMIT_FN, and migration-leases.ts). */
const COMMIT_TYPES = [
  'text[]', 'text[]', 'text[]', 'boolean[]', 'boolean[]', 'bigint[]', 'text[]',
  'text[]', 'boolean[]', 'text[]', 'text[]', 'numeric[]', 'text[]', 'text[]', 'text[]', 'text[]',
  'numeric[]', 'bigint[]', 'bigint[]', 'bigint[]', 'bigint[]',
  'text[]', 'text[]', 'text[]', 'bigint[]', 'bigint',
  'text[]', 'bigint[]', 'boolean[]',
  'bigint[]', 'text[]', 'text[]', 'text[]', 'text[]', 'text[]', 'text[]',
  'text[]', 'text[]',
]; // prettier-ignore
/** The fence (holder, leased accounts, their epochs) and the account writes' meta flags first. */
const FENCED_TYPES = ['text', 'text[]', 'bigint[]', 'boolean[]', ...COMMIT_TYPES];
const COMMIT_SQL = `SELECT coulomb_ledger_commit_v2(${FENCED_TYPES.map((t, i) => `$${i + 1}::${t}`).join(', ')})`;

/** SQLSTATEs after which the whole batch is simply run again: deadlock, serialization failure. */
const RETRYABLE = new Set(['40P01', '40001']);

export interface PostgresLedgerStoreOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /**
   * How long a ledger idempotency key names its transfer (the ledger's `retentionMs`, default 32
   * days): within it, another transfer under the same key is refused.
   */
  keyRetentionMs?: number;
}

/**
 * The ledger in PostgreSQL, for several gateway instances on one database. Each group-commit
 * batch is one call of `coulomb_ledger_commit_v2` (one round trip, one transaction): the database,
 * not the writing process, enforces no overdraw and the balance ceiling (CHECK constraints on the
 * account rows, moved by deltas computed from the transfers' old and new rows), one transfer per
 * idempotency key, one creation per transfer id, and final transfers staying final. A refused
 * batch raises LedgerStoreConflict and nothing of it lands.
 */
export class PostgresLedgerStore implements LedgerStore {
  private readonly keyRetentionMs: number;
  readonly leases: PostgresAccountLeases;

  private constructor(
    readonly sql: Sql,
    options: PostgresLedgerStoreOptions,
  ) {
    this.keyRetentionMs = options.keyRetentionMs ?? 32 * 24 * 3600 * 1000;
    this.leases = new PostgresAccountLeases(sql);
  }

  /** Connects (a pool), applies the migrations the database lacks, and returns the store. */
  static async open(url: string, options: PostgresLedgerStoreOptions = {}): Promise<PostgresLedgerStore> {
    const sql = postgres(url, { max: options.max ?? 10, onnotice: false });
    try {
      await migrate(sql);
    } catch (err) {
      await sql.end();
      throw err;
    }
    return new PostgresLedgerStore(sql, options);
  }

  async load(): Promise<LedgerSnapshot> {
    const pending = await this.sql<TransferRow[]>`
      SELECT * FROM ledger_transfers WHERE state = 'pending' ORDER BY id`;
    const [seq] = await this.sql<{ seq: string | null }[]>`SELECT max(seq) AS seq FROM ledger_journal`;
    const any = await this.sql`SELECT 1 FROM ledger_accounts LIMIT 1`;
    return { pending: pending.map(transferOf), lastSeq: Number(seq?.seq ?? 0), empty: any.length === 0 };
  }

  async transfersCreatedSince(
    since: number,
    options: { after?: string; limit: number },
  ): Promise<{ transfers: Transfer[]; next?: string }> {
    let rows: TransferRow[];
    if (options.after !== undefined) {
      const [at, id] = JSON.parse(options.after) as [number, string];
      rows = await this.sql<TransferRow[]>`
        SELECT * FROM ledger_transfers WHERE (created_at, id) > (${at}, ${id})
        ORDER BY created_at, id LIMIT ${options.limit}`;
    } else {
      rows = await this.sql<TransferRow[]>`
        SELECT * FROM ledger_transfers WHERE created_at >= ${since}
        ORDER BY created_at, id LIMIT ${options.limit}`;
    }
    const transfers = rows.map(transferOf);
    const last = transfers[transfers.length - 1];
    return {
      transfers,
      ...(rows.length === options.limit && last ? { next: JSON.stringify([last.createdAt, last.id]) } : {}),
    };
  }

  async commit(writes: LedgerWrite[]): Promise<void> {
    const params = this.encode(writes);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.sql.unsafe(COMMIT_SQL, params);
        return;
      } catch (err) {
        const e = err as { code?: string; hint?: string; constraint_name?: string; message?: string };
        if (e.code !== undefined && RETRYABLE.has(e.code) && attempt < 10) continue;
        if (e.code === 'P0001' && e.hint !== undefined)
          throw new LedgerStoreConflict(e.hint, e.message ?? '');
        if (e.code === '23514' && e.constraint_name === 'ledger_no_overdraw')
          throw new LedgerStoreConflict('INSUFFICIENT_FUNDS', 'the batch would overdraw an account');
        if (e.code === '23514' && e.constraint_name === 'ledger_balance_limit')
          throw new LedgerStoreConflict('BALANCE_LIMIT_EXCEEDED', 'the batch would exceed the balance limit');
        throw err;
      }
    }
  }

  /** The batch as the commit function's arrays, synchronously (spend buckets are live objects). */
  private encode(writes: LedgerWrite[]): (string | number | null | (string | number | boolean | null)[])[] {
    const accounts: Extract<LedgerWrite, { type: 'account' }>[] = [];
    const transfers: Transfer[] = [];
    const keys: Extract<LedgerWrite, { type: 'idempotency' }>[] = [];
    const expired: Extract<LedgerWrite, { type: 'idempotency_expired' }>[] = [];
    const journal: JournalEntry[] = [];
    const records = new Map<string, string | null>();
    const created = new Set<string>();
    const fences = new Map<string, number>();
    for (const w of writes) {
      switch (w.type) {
        case 'fence':
          fences.set(w.accountId, w.epoch);
          break;
        case 'account':
          accounts.push(w);
          break;
        case 'transfer':
          transfers.push(w.transfer);
          break;
        case 'idempotency':
          keys.push(w);
          break;
        case 'idempotency_expired':
          expired.push(w);
          break;
        case 'idempotency_indexed':
          break; // every key here has its time: nothing to index
        case 'journal':
          journal.push(w.entry);
          if (w.entry.type === 'transfer_created' && w.entry.transferId !== undefined)
            created.add(w.entry.transferId);
          break;
        case 'record':
          records.set(w.key, w.value);
          break;
      }
    }
    const acc = accounts
      .map((w) => ({
        id: w.account.id,
        a: w.account,
        spend: w.spend && !w.spend.empty ? w.spend.toRecord() : null,
        meta: w.created === true || w.frozenChanged === true,
      }))
      .sort(byId);
    transfers.sort(byId);
    const fenced = [...fences.keys()].sort();
    const opt = <T>(v: T | undefined): T | null => (v === undefined ? null : v);
    const str = (v: bigint | undefined): string | null => (v === undefined ? null : v.toString());
    return [
      this.leases.holder,
      fenced,
      fenced.map((id) => fences.get(id)!),
      acc.map((x) => x.meta),
      acc.map((x) => x.id),
      acc.map((x) => x.a.kind),
      acc.map((x) => x.a.name),
      acc.map((x) => x.a.allowNegative),
      acc.map((x) => x.a.frozen),
      acc.map((x) => String(x.a.createdAt)),
      acc.map((x) => (x.spend ? JSON.stringify(x.spend) : null)),
      transfers.map((t) => t.id),
      transfers.map((t) => created.has(t.id)),
      transfers.map((t) => t.debitAccountId),
      transfers.map((t) => t.creditAccountId),
      transfers.map((t) => t.amount.toString()),
      transfers.map((t) => t.state),
      transfers.map((t) => t.code),
      transfers.map((t) => opt(t.memo)),
      transfers.map((t) => opt(t.idempotencyKey)),
      transfers.map((t) => str(t.advanced)),
      transfers.map((t) => opt(t.spentAt)),
      transfers.map((t) => opt(t.timeoutAt)),
      transfers.map((t) => t.createdAt),
      transfers.map((t) => opt(t.resolvedAt)),
      keys.map((k) => k.key),
      keys.map((k) => k.transferId),
      keys.map((k) => k.fingerprint),
      keys.map((k) => k.at),
      this.keyRetentionMs,
      expired.map((x) => x.key),
      expired.map((x) => x.at),
      expired.map((x) => x.keepRecord),
      journal.map((e) => e.at),
      journal.map((e) => e.type),
      journal.map((e) => e.accountIds[0] ?? null),
      journal.map((e) => e.accountIds[1] ?? null),
      journal.map((e) => opt(e.transferId)),
      journal.map((e) => opt(e.amount)),
      journal.map((e) => opt(e.detail)),
      [...records.keys()],
      [...records.values()],
    ];
  }

  async getTransfer(id: string): Promise<Transfer | undefined> {
    const [r] = await this.sql<TransferRow[]>`SELECT * FROM ledger_transfers WHERE id = ${id}`;
    return r ? transferOf(r) : undefined;
  }

  async getTransfers(ids: readonly string[]): Promise<(Transfer | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.sql<TransferRow[]>`
      SELECT * FROM ledger_transfers WHERE id = ANY (${[...ids]}::text[])`;
    const found = new Map(rows.map((r) => [r.id, transferOf(r)]));
    return ids.map((id) => found.get(id));
  }

  async getAccounts(ids: readonly string[]): Promise<(StoredAccount | undefined)[]> {
    if (ids.length === 0) return [];
    const rows = await this.sql<AccountRow[]>`
      SELECT * FROM ledger_accounts WHERE id = ANY (${[...ids]}::text[])`;
    const found = new Map(rows.map((r) => [r.id, accountOf(r)]));
    return ids.map((id) => found.get(id));
  }

  async listAccounts(options: { after?: string; limit: number }): Promise<StoredAccount[]> {
    const rows = await this.sql<AccountRow[]>`
      SELECT * FROM ledger_accounts WHERE id > ${options.after ?? ''} ORDER BY id LIMIT ${options.limit}`;
    return rows.map(accountOf);
  }

  async searchAccounts(options: AccountSearch): Promise<{ accounts: StoredAccount[]; next?: string }> {
    const { after, limit } = options;
    if (options.by === 'id') {
      const rows = await this.sql<AccountRow[]>`
        SELECT * FROM ledger_accounts
        WHERE id >= ${options.prefix} AND id < ${options.prefix + TOP} AND id > ${after ?? ''}
        ORDER BY id LIMIT ${limit}`;
      const last = rows[rows.length - 1];
      return { accounts: rows.map(accountOf), ...(rows.length === limit && last ? { next: last.id } : {}) };
    }
    // The cursor is the last row's lower-case name and id, as LevelDB's index key has them.
    const prefix = options.prefix.toLowerCase();
    const cut = after?.lastIndexOf('\u0000') ?? -1;
    const [name, id] =
      after !== undefined && cut >= 0 ? [after.slice(0, cut), after.slice(cut + 1)] : ['', ''];
    const rows = await this.sql<(AccountRow & { lname: string })[]>`
      SELECT *, lower(name) COLLATE "C" AS lname FROM ledger_accounts
      WHERE lower(name) COLLATE "C" >= ${prefix} AND lower(name) COLLATE "C" < ${prefix + TOP}
        AND (lower(name) COLLATE "C", id) > (${name}::text COLLATE "C", ${id}::text COLLATE "C")
      ORDER BY lower(name) COLLATE "C", id LIMIT ${limit}`;
    const last = rows[rows.length - 1];
    return {
      accounts: rows.map(accountOf),
      ...(rows.length === limit && last ? { next: `${last.lname}\u0000${last.id}` } : {}),
    };
  }

  async frozenAccounts(options: { after?: string; limit: number }): Promise<StoredAccount[]> {
    const rows = await this.sql<AccountRow[]>`
      SELECT * FROM ledger_accounts WHERE frozen AND id > ${options.after ?? ''}
      ORDER BY id LIMIT ${options.limit}`;
    return rows.map(accountOf);
  }

  async countFrozen(): Promise<number> {
    const [row] = await this.sql<{ n: string }[]>`SELECT count(*) AS n FROM ledger_accounts WHERE frozen`;
    return Number(row?.n ?? 0);
  }

  async getIdempotency(keys: readonly string[]): Promise<(StoredKey | undefined)[]> {
    if (keys.length === 0) return [];
    const rows = await this.sql<{ key: string; transfer_id: string; fingerprint: string; at: string }[]>`
      SELECT * FROM ledger_keys WHERE key = ANY (${[...keys]}::text[])`;
    const found = new Map(
      rows.map((r) => [r.key, { transferId: r.transfer_id, fingerprint: r.fingerprint, at: Number(r.at) }]),
    );
    return keys.map((k) => found.get(k));
  }

  async expiredIdempotency(before: number, limit: number): Promise<{ key: string; at: number }[]> {
    const rows = await this.sql<{ key: string; at: string }[]>`
      SELECT key, at FROM ledger_keys WHERE at < ${before} ORDER BY at, key LIMIT ${limit}`;
    return rows.map((r) => ({ key: r.key, at: Number(r.at) }));
  }

  /** Every key here is dated (the time is a column): nothing to index. */
  async undatedIdempotency(): Promise<{ keys: { key: string; at: number }[]; next?: string }> {
    return { keys: [] };
  }

  async journal(accountId: string, options: { limit: number; beforeSeq?: number }): Promise<JournalEntry[]> {
    const before = options.beforeSeq ?? Number.MAX_SAFE_INTEGER;
    const rows = await this.sql<JournalRow[]>`
      SELECT j.* FROM ledger_journal_accounts x JOIN ledger_journal j ON j.seq = x.seq
      WHERE x.account_id = ${accountId} AND x.seq < ${before}
      ORDER BY x.seq DESC LIMIT ${options.limit}`;
    return rows.map(journalOf);
  }

  async getRecord(key: string): Promise<string | undefined> {
    const [r] = await this.sql<{ value: string }[]>`SELECT value FROM ledger_records WHERE key = ${key}`;
    return r?.value;
  }

  async listRecords(
    prefix: string,
    options: { limit?: number; reverse?: boolean; after?: string } = {},
  ): Promise<StoredRecord[]> {
    const upper = `${prefix}\uffff`;
    const limit = options.limit ?? null;
    // As the LevelDB store: keys after `prefix` itself (strictly), before `prefix` + U+FFFF.
    const rows = options.reverse
      ? await this.sql<StoredRecord[]>`
          SELECT key, value FROM ledger_records WHERE key >= ${prefix} AND key < ${options.after ?? upper}
          ORDER BY key DESC LIMIT ${limit}`
      : await this.sql<StoredRecord[]>`
          SELECT key, value FROM ledger_records WHERE key > ${options.after ?? prefix} AND key < ${upper}
          ORDER BY key LIMIT ${limit}`;
    return rows.map((r) => ({ key: r.key, value: r.value }));
  }

  async close(): Promise<void> {
    await this.sql.end();
  }
}
