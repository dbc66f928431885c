import type { SpendBuckets, SpendRecord } from './spend-buckets.js';
import type { Account, JournalEntry, Transfer } from './types.js';

/** One durable change; a batch of them is written atomically. */
export type LedgerWrite =
  /**
   * `spend` is the account's live spend buckets, encoded by the store when the batch is written
   * (synchronously, at the start of `commit`): the state at the end of the batch, like `account`.
   */
  | { type: 'account'; account: Account; spend?: SpendBuckets }
  | { type: 'transfer'; transfer: Transfer }
  | { type: 'idempotency'; key: string; transferId: string; fingerprint: string }
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

/** An account as stored, with its spend buckets. */
export interface StoredAccount {
  account: Account;
  spend: SpendRecord | undefined;
}

export interface LedgerSnapshot {
  accounts: StoredAccount[];
  /** Every pending transfer, and every transfer created since `since`. */
  transfers: Transfer[];
  idempotency: { key: string; transferId: string; fingerprint: string }[];
  lastSeq: number;
}

/**
 * Where the ledger keeps its state. LevelDB is the embedded default; a PostgreSQL store for
 * multi-instance deployments implements the same contract.
 */
export interface LedgerStore {
  /** Reads what the ledger needs in memory: accounts, pending and recent transfers, idempotency keys. */
  load(since: number): Promise<LedgerSnapshot>;
  /** Writes all of `writes` atomically and durably (fsync) before resolving. */
  commit(writes: LedgerWrite[]): Promise<void>;
  getTransfer(id: string): Promise<Transfer | undefined>;
  /** Journal entries touching an account, newest first. */
  journal(accountId: string, options: { limit: number; beforeSeq?: number }): Promise<JournalEntry[]>;
  getRecord(key: string): Promise<string | undefined>;
  listRecords(
    prefix: string,
    options?: { limit?: number; reverse?: boolean; after?: string },
  ): Promise<StoredRecord[]>;
  close(): Promise<void>;
}
