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
  | { type: 'record'; key: string; value: string | null }
  /**
   * A debit of `accountId` in this batch was validated under its lease `epoch` (a shared store
   * only, see `AccountLeaseStore`): the store refuses the batch unless the lease is still held.
   */
  | { type: 'fence'; accountId: string; epoch: number };

/**
 * A batch being filled: each write is encoded into it when staged (its state as of that moment),
 * so that writing the batch is only the store's atomic, fsync'd write. An account write is staged
 * once per batch, at its end (see `GroupCommit`); every other write when it is queued.
 */
export interface StagedBatch {
  /** Encodes `write` into the batch now. Synchronous; must not keep `write`'s live objects. */
  stage(write: LedgerWrite): void;
  /** How many writes were staged. */
  readonly size: number;
  /** Writes everything staged atomically and durably (fsync) before resolving. Called once. */
  write(): Promise<void>;
  /** Releases a batch that will not be written. */
  discard(): void;
}

/**
 * The staged batch of a store without one of its own: it keeps the writes (an account or transfer
 * updated twice collapses into its last write, a copy taken when the batch is written) and
 * hands them to `commit` in one call — accounts, then transfers, then the rest in order.
 */
export class CollectedBatch implements StagedBatch {
  private readonly accounts = new Map<string, LedgerWrite & { type: 'account' }>();
  private readonly transfers = new Map<string, LedgerWrite & { type: 'transfer' }>();
  private readonly appended: LedgerWrite[] = [];
  size = 0;

  constructor(private readonly commit: (writes: LedgerWrite[]) => Promise<void>) {}

  stage(write: LedgerWrite): void {
    this.size += 1;
    if (write.type === 'account') {
      // The latest state wins; the flags of an earlier write of the account stay with it.
      const prev = this.accounts.get(write.account.id);
      this.accounts.set(
        write.account.id,
        prev === undefined
          ? write
          : {
              ...write,
              created: write.created === true || prev.created === true,
              frozenChanged: write.frozenChanged === true || prev.frozenChanged === true,
            },
      );
    } else if (write.type === 'transfer') this.transfers.set(write.transfer.id, write);
    else this.appended.push(write);
  }

  write(): Promise<void> {
    const writes: LedgerWrite[] = [];
    for (const w of this.accounts.values()) writes.push({ ...w, account: { ...w.account } });
    for (const w of this.transfers.values()) writes.push({ type: 'transfer', transfer: { ...w.transfer } });
    for (const w of this.appended) writes.push(w);
    return this.commit(writes);
  }

  discard(): void {}
}

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

/** A lease taken or renewed: the instance may validate debits of the account in memory. */
export interface LeaseGrant {
  accountId: string;
  /** The lease's epoch: new whenever the lease changes hands (never reused). */
  epoch: number;
  /** Another instance has asked for the account since this holder took it. */
  wanted: boolean;
}

/**
 * Account leases of a store shared by several instances: while an instance holds an account's
 * lease, no other instance debits it, so the holder's memory of the account (balance, frozen
 * flag, spend buckets) is authoritative for debits. A lease expires `ttlMs` after it was last
 * taken or renewed (by the database's clock); a batch's debits are fenced by their epochs.
 */
export interface AccountLeaseStore {
  /** This instance's holder id (new at every start). */
  readonly holder: string;
  /**
   * Takes the free or expired leases of `ids` and renews those this holder has; the others are
   * refused, and marked wanted so their holders hand them over.
   */
  acquireLeases(ids: readonly string[], ttlMs: number): Promise<{ granted: LeaseGrant[]; refused: string[] }>;
  /** The accounts of this holder's leases another instance has asked for. */
  wantedLeases(): Promise<string[]>;
  /** Gives leases up (each only if still held under that epoch). */
  releaseLeases(leases: readonly { accountId: string; epoch: number }[]): Promise<void>;
  /**
   * The pending transfers debiting these accounts: what the holder of their leases alone may post,
   * void or advance (read when a lease is taken; another holder may have changed them since).
   */
  pendingDebits(accountIds: readonly string[]): Promise<Transfer[]>;
}

/**
 * Where the ledger keeps its state. LevelDB is the embedded default; a PostgreSQL store for
 * multi-instance deployments implements the same contract.
 */
export interface LedgerStore {
  /**
   * Present on a store several instances share (PostgreSQL): the ledger then validates debits
   * only under the account's lease, reads what it does not hold afresh, and trusts no memory of
   * absence. Absent on a store one process owns (LevelDB): memory is the truth.
   */
  readonly leases?: AccountLeaseStore;
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
  /**
   * A new batch to stage writes into as they are queued (see `StagedBatch`), committed like
   * `commit`. Optional: without it the ledger collects writes and calls `commit` (`CollectedBatch`).
   */
  stage?(): StagedBatch;
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
