import type { SpendBuckets, SpendRecord } from './spend-buckets.js';
import type { Account, JournalEntry, Transfer } from './types.js';

/** One durable change; a batch of them is written atomically. */
export type LedgerWrite =
  /**
   * `spend` is the account's live spend buckets, encoded by the store when the batch is written
   * (synchronously, at the start of `commit`): the state at the end of the batch, like `account`.
   */
  | {
      type: 'account';
      account: Account;
      spend?: SpendBuckets;
      /**
       * Set by the ledger on the write that creates the account (`created`) or changes its frozen
       * flag (`frozenChanged`): a store with its own indexes (LevelDB's account name and frozen
       * indexes) writes their entries only then, never on the account writes of every transfer.
       */
      created?: boolean;
      frozenChanged?: boolean;
    }
  | { type: 'transfer'; transfer: Transfer }
  /** A ledger idempotency key, with the time it counts from (`at`, for retention). */
  | { type: 'idempotency'; key: string; transferId: string; fingerprint: string; at: number }
  /** An expired key's index entry goes; its record too unless the key was used again since. */
  | { type: 'idempotency_expired'; key: string; at: number; keepRecord: boolean }
  /** The time index entry of a key written before the index existed (its record is unchanged). */
  | { type: 'idempotency_indexed'; key: string; at: number }
  | { type: 'journal'; entry: JournalEntry }
  /** A side record (payment, invoice, policy...) written in the same atomic batch as the money. */
  | { type: 'record'; key: string; value: string | null };

export interface StoredRecord {
  key: string;
  value: string;
}

/** Side records kept with the ledger, so that they commit atomically with the transfers they describe. */
export interface RecordStore {
  putRecords(records: { key: string; value: string | null }[]): Promise<void>;
  getRecord(key: string): Promise<string | undefined>;
  /** Records whose key starts with `prefix`, in key order (or reverse). */
  listRecords(
    prefix: string,
    options?: { limit?: number; reverse?: boolean; after?: string },
  ): Promise<StoredRecord[]>;
}

/** A search of accounts by id or name prefix, a page after the cursor `after`. */
export interface AccountSearch {
  by: 'id' | 'name';
  prefix: string;
  after?: string;
  limit: number;
}

/** An account as stored, with its spend buckets. */
export interface StoredAccount {
  account: Account;
  spend: SpendRecord | undefined;
}

/** What the ledger reads at start: only what is live. */
export interface LedgerSnapshot {
  /** Every pending transfer. */
  pending: Transfer[];
  lastSeq: number;
  /** The store holds no account at all (a new ledger). */
  empty: boolean;
}

/** A ledger idempotency key's record. */
export interface StoredKey {
  transferId: string;
  fingerprint: string;
  /** When the key's transfer was made: the key counts for the retention window from then. */
  at: number;
}

/**
 * Where the ledger keeps its state. LevelDB is the embedded default; a PostgreSQL store for
 * multi-instance deployments implements the same contract.
 */
export interface LedgerStore {
  /** Reads what the ledger needs in memory at start: pending transfers and the journal's seq. */
  load(): Promise<LedgerSnapshot>;
  /**
   * Transfers created at or after `since`, oldest first, a page at a time (`after`: the `next` of
   * the previous page). Only for the one-off rebuild of spend buckets of a store written before
   * they existed.
   */
  transfersCreatedSince(
    since: number,
    options: { after?: string; limit: number },
  ): Promise<{ transfers: Transfer[]; next?: string }>;
  /**
   * Writes all of `writes` atomically and durably (fsync) before resolving. Encodes them
   * synchronously, before its first `await` (account spend buckets are live objects).
   */
  commit(writes: LedgerWrite[]): Promise<void>;
  getTransfer(id: string): Promise<Transfer | undefined>;
  getTransfers(ids: readonly string[]): Promise<(Transfer | undefined)[]>;
  getAccounts(ids: readonly string[]): Promise<(StoredAccount | undefined)[]>;
  /** Accounts in id order, after `after`. */
  listAccounts(options: { after?: string; limit: number }): Promise<StoredAccount[]>;
  /**
   * Accounts whose id (`by: 'id'`, in id order) or name, compared in lower case (`by: 'name'`, in
   * name then id order), starts with `prefix`: a page of at most `limit`, after the cursor `after`
   * (the `next` of the previous page; absent on the last page). Read through an index: the cost
   * grows with the page, never with the number of accounts.
   */
  searchAccounts(options: AccountSearch): Promise<{ accounts: StoredAccount[]; next?: string }>;
  /** Frozen accounts in id order, a page after `after`, from an index of the frozen ones only. */
  frozenAccounts(options: { after?: string; limit: number }): Promise<StoredAccount[]>;
  /** How many accounts are frozen (read from the same index). */
  countFrozen(): Promise<number>;
  getIdempotency(keys: readonly string[]): Promise<(StoredKey | undefined)[]>;
  /** Up to `limit` ledger keys whose time is before `before`, oldest first. */
  expiredIdempotency(before: number, limit: number): Promise<{ key: string; at: number }[]>;
  /**
   * Ledger keys whose record has no time (written before the time index), dated from their
   * transfer like `getIdempotency` does, in key order, a page of `limit` records read at a time
   * (`after`: the `next` of the previous page; no `next` on the last page).
   */
  undatedIdempotency(options: {
    after?: string;
    limit: number;
  }): Promise<{ keys: { key: string; at: number }[]; next?: string }>;
  /** Journal entries touching an account, newest first. */
  journal(accountId: string, options: { limit: number; beforeSeq?: number }): Promise<JournalEntry[]>;
  getRecord(key: string): Promise<string | undefined>;
  listRecords(
    prefix: string,
    options?: { limit?: number; reverse?: boolean; after?: string },
  ): Promise<StoredRecord[]>;
  /**
   * Reclaims what deleted side records under `prefix` left behind, for an index of live things
   * with churn (entries written, then deleted when final): an LSM store keeps a deletion marker
   * per deleted key until a compaction reaches it, and a scan of the index walks every marker.
   * Optional: a store without such markers has nothing to do.
   */
  compactRecords?(prefix: string): Promise<void>;
  close(): Promise<void>;
}
