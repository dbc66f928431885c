import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { MAX_MSAT, msat, type Msat } from '../domain/msat.js';
import { AccountLeases, type AccountLeaseOptions } from './account-leases.js';
import { LedgerError, LedgerErrorCode } from './errors.js';
import { GroupCommit, type CommittedBatch } from './group-commit.js';
import { IdempotencyKeys, type IdempotencyRecords, type IdempotentRequest } from './idempotency.js';
import { SPEND_CODES, SPEND_HORIZON_MS, SpendBuckets } from './spend-buckets.js';
import {
  CollectedBatch,
  type AccountSearch,
  type LedgerStore,
  type LedgerWrite,
  type RecordStore,
  type StoredAccount,
  type StoredRecord,
} from './store.js';
import {
  availableOf,
  type Account,
  type AccountKind,
  type JournalEntry,
  type Transfer,
  type TransferRequest,
} from './types.js';

export interface LedgerOptions {
  now?: () => number;
  /** How long a ledger idempotency key counts (32 days): older ones are pruned from disk. */
  retentionMs?: number;
  /** Accounts kept in memory (least recently used out first; see `ensure`). Default 50,000. */
  accountCacheSize?: number;
  /** Final transfers kept in memory (pending ones always are). Default 10,000. */
  transferCacheSize?: number;
  /** Ledger idempotency keys kept in memory. Default 50,000. */
  keyCacheSize?: number;
  /**
   * Whether `open` starts the key sweeps (expired ledger and request keys every ten minutes, the
   * one-off time index of old keys). Default true; false leaves them to `startSweeps`, for a
   * composition root that runs them on the elected leader only.
   */
  sweeps?: boolean;
  /** Account leases, on a store several instances share (see `LedgerStore.leases`). */
  leases?: AccountLeaseOptions;
}

/** What a synchronous step is about to use: `ensure` makes it resident. */
export interface LedgerNeeds {
  accounts?: readonly string[];
  transfers?: readonly string[];
  /** Ledger idempotency keys (`invoice:<hash>`, `escrow-release:<id>`...) and their transfers. */
  keys?: readonly string[];
  /**
   * Accounts the step may debit (or freeze). On a store several instances share, this instance
   * takes their leases first (waiting while another instance spends from them), so that the
   * balance, frozen flag and spend buckets it validates against are the truth; elsewhere the same
   * as `accounts`.
   */
  spend?: readonly string[];
}

export interface Applied<T> {
  value: T;
  /** Resolves once the change is on disk; nothing outside the ledger may act on it before. */
  durable: Promise<void>;
  /** True when an idempotency key matched an earlier transfer: nothing new happened. */
  replayed: boolean;
}

/**
 * What one durable group-commit batch changed: every account a transfer of the batch moved funds
 * on (posted or pending), once, as of the end of the batch. Published after the batch is on disk.
 */
export interface LedgerChange {
  accounts: Account[];
}

/** What budgets and rates read of an account (see spend-buckets.ts for how exact it is). */
export interface SpendFigures {
  /** Spending debits since `since`, pending ones included: never less than the exact sum. */
  spentSince(since: number): bigint;
  /** Spending debits since `since`, counted: never fewer than the exact count. */
  countSince(since: number): number;
  /** Pending `payment` transfers the account pays. */
  inFlight: number;
}

const DAY = 24 * 3600 * 1000;
/** Anything used this recently stays resident: `await ensure(...)` then a sync step is safe. */
const PINNED_MS = 60_000;
/** How many ids known not to exist are remembered (beyond those of the last PINNED_MS). */
const MISSING_KEPT = 10_000;
/** A shared store: how long a leased account's memory goes without a fresh read (credits made elsewhere). */
const LEASED_FRESH_MS = 1000;

/**
 * Thrown by a synchronous step on an account, transfer or key that is neither in memory nor known
 * not to exist: a programming error (the caller forgot `await ledger.ensure(...)`), never an
 * answer such as ACCOUNT_NOT_FOUND, which would be a lie.
 */
export class NotResidentError extends Error {
  constructor(what: string) {
    super(`ledger: ${what} is not in memory; await ledger.ensure(...) before the synchronous step`);
    this.name = 'NotResidentError';
  }
}

/** An item held in memory: when it was last used and the batch its last write went into. */
/** Marks that the store's accounts carry spend buckets (see `rebuildSpend`). */
const SPEND_BUCKETS_MARK = 'ledgermark!spend-buckets';
/**
 * Progress of the one-off time indexing of ledger keys written before their time index (see
 * `indexKeys`): `{"after": <key>}` after each page, then `{"done": true}`.
 */
const KEY_INDEX_MARK = 'ledgermark!key-index';

interface Resident<T> {
  value: T;
  touchedAt: number;
  /**
   * When it was put at the young end of its cache (inserted or moved there): the caches are in
   * this order, and `touchedAt - placedAt` stays under a second (see `touch`).
   */
  placedAt: number;
  batch: number;
}

/** Puts an item at the young end of its cache (a replaced one moves there too, keeping the order). */
function place<T>(m: Map<string, Resident<T>>, id: string, value: T, now: number, batch: number): void {
  m.delete(id);
  m.set(id, { value, touchedAt: now, placedAt: now, batch });
}

interface ResidentAccount {
  account: Account;
  spend: SpendBuckets | undefined;
  /** A shared store: when it was last read from the store. */
  readAt?: number;
}

interface KeyEntry {
  transferId: string;
  fingerprint: string;
  at: number;
}
/**
 * Account ids: safe in store keys (no `!`) and in URL paths (never `.` or `..`); `:` marks the
 * gateway's own accounts (`sys:operator`, `l402:<token id>`, `svc:<service>`).
 */
const ACCOUNT_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,127}$/;

/** Adds `delta` to a per-account counter, dropping it at zero. */
function bump(m: Map<string, number>, id: string, delta: number): void {
  const n = (m.get(id) ?? 0) + delta;
  if (n > 0) m.set(id, n);
  else m.delete(id);
}

/** The balance ceiling: an account's balance, counting pending credits, stays within MAX_MSAT. */
function fitsCredit(a: Account, amount: bigint): boolean {
  return a.creditsPosted + a.creditsPending - a.debitsPosted + amount <= MAX_MSAT;
}

function balanceLimit(accountId: string): LedgerError {
  return new LedgerError(
    LedgerErrorCode.BALANCE_LIMIT_EXCEEDED,
    `account ${accountId} would hold more than ${MAX_MSAT} msat, the largest amount the ledger keeps`,
    { accountId, maxMsat: MAX_MSAT.toString() },
  );
}

/**
 * Double-entry ledger with two-phase transfers. Every change is validated and applied to memory
 * synchronously (so a policy check and a reservation made in the same tick are atomic), then
 * made durable by group commit. If the store fails, the ledger stops accepting changes: memory
 * is ahead of disk, and the process must restart from disk.
 */
/** Side records to commit in the same atomic batch as a ledger change. */
export type SideRecords = { key: string; value: string | null }[];

export class Ledger implements RecordStore {
  /** Recently used accounts (LRU order, approximately: re-inserted at most once a second). */
  private readonly accounts = new Map<string, Resident<ResidentAccount>>();
  /** Every pending transfer (always in memory). */
  private readonly pending = new Map<string, Transfer>();
  /** Recently used final transfers. */
  private readonly recent = new Map<string, Resident<Transfer>>();
  /** Recently used ledger idempotency keys. */
  private readonly keys = new Map<string, Resident<KeyEntry>>();
  /** Ids read from disk and not found, with when: a sync step may say "not found" for them. */
  private readonly missing = {
    accounts: new Map<string, number>(),
    transfers: new Map<string, number>(),
    keys: new Map<string, number>(),
  };
  /** Bumped at every eviction: a disk read that overlapped one is read again. */
  private evictions = 0;
  private evictionVisits = 0;
  /**
   * Memory holds everything there is (the store was empty at open and nothing was evicted since):
   * what is not resident does not exist.
   */
  private complete: boolean;
  /** Pending transfers per account (either side): such accounts stay resident. */
  private readonly pendingOf = new Map<string, number>();
  /** Pending `payment` transfers per debit account. */
  private readonly inFlight = new Map<string, number>();
  private readonly accountCacheSize: number;
  private readonly transferCacheSize: number;
  private readonly keyCacheSize: number;
  private sweeper: NodeJS.Timeout | undefined;
  private indexing: Promise<void> | undefined;
  private readonly commit: GroupCommit;
  private readonly events = new EventEmitter();
  private seq: number;
  private failure: unknown;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly requests: IdempotencyKeys;
  /** The filling batch's promise from the group commit, and the same with failures mapped. */
  private batchRaw: Promise<void> | undefined;
  private batchDurable: Promise<void> = Promise.resolve();
  /** A store several instances share: debits only under this instance's account leases. */
  private readonly leases: AccountLeases | undefined;
  /** A shared store: the lease epoch a step's debits of one account are bound to (`underLease`). */
  private readonly bound = new AsyncLocalStorage<{ accountId: string; epoch: number }>();

  private constructor(
    private readonly store: LedgerStore,
    lastSeq: number,
    empty: boolean,
    options: LedgerOptions,
  ) {
    this.seq = lastSeq;
    // Another instance may write a shared store at any time: what is not in memory may exist.
    this.complete = empty && store.leases === undefined;
    this.leases =
      store.leases &&
      new AccountLeases(
        store.leases,
        {
          refresh: (ids) => this.readLeased(ids),
          // Not handed over while memory is ahead, or a preparer holds debits of it unwritten.
          dirty: (id) => this.dirty(id) || this.unwritten.some((u) => u(id)),
          released: (ids) => this.dropPending(ids),
        },
        options.leases,
      );
    this.accountCacheSize = options.accountCacheSize ?? 50_000;
    this.transferCacheSize = options.transferCacheSize ?? 10_000;
    this.keyCacheSize = options.keyCacheSize ?? 50_000;
    this.now = options.now ?? Date.now;
    this.retentionMs = options.retentionMs ?? 32 * DAY;
    this.commit = new GroupCommit(
      () => store.stage?.() ?? new CollectedBatch((writes) => store.commit(writes)),
      (err) => {
        this.failure = err;
        this.events.emit('fatal', err);
      },
      (batch) => this.committed(batch),
    );
    this.events.setMaxListeners(0);
    this.requests = new IdempotencyKeys(this, this.now, this.retentionMs);
  }

  /**
   * Reads only what is live: the pending transfers (and their accounts) and the journal's
   * sequence. Accounts, final transfers and idempotency keys are read on demand (`ensure`).
   */
  static async open(store: LedgerStore, options: LedgerOptions = {}): Promise<Ledger> {
    const snapshot = await store.load();
    const ledger = new Ledger(store, snapshot.lastSeq, snapshot.empty, options);
    // A shared store: each pending transfer comes with the lease of its debit account (another
    // instance may be posting it right now); a store this process owns has them all.
    if (!ledger.leases)
      for (const t of snapshot.pending) {
        ledger.pending.set(t.id, t);
        ledger.countPending(t, 1);
      }
    await ledger.ensure({ accounts: [...ledger.pendingOf.keys()] });
    if ((await store.getRecord(SPEND_BUCKETS_MARK)) === undefined) {
      if (!snapshot.empty) await ledger.rebuildSpend();
      await ledger.putRecords([{ key: SPEND_BUCKETS_MARK, value: String(ledger.now()) }]);
    }
    if (options.sweeps !== false) ledger.startSweeps();
    return ledger;
  }

  /** Sweeps expired ledger and request keys every ten minutes; indexes old keys once, in the background. */
  startSweeps(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      void this.sweepKeys().catch(() => undefined);
      void this.sweepRequestKeys().catch(() => undefined);
    }, 10 * 60_000);
    this.sweeper.unref();
    // Keys written before their time index get it in the background: start-up does not wait.
    void this.indexKeys().catch(() => undefined);
  }

  stopSweeps(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * Loads into memory what a following synchronous step needs: accounts, final transfers by id,
   * ledger idempotency keys (and the transfers they name). What is resident and was used in the
   * last 60 s is never evicted, so `await ensure(...)` immediately followed by the sync step is
   * safe. Ids that do not exist are remembered as such (the sync step then says not found).
   * A shared store: the leases of `spend` are held when it resolves.
   */
  async ensure(needs: LedgerNeeds): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.ensureOnce(needs);
      // A lease taken first may have been handed over while the reads after it waited on the
      // database (another instance asked, and the grace ran out meanwhile): the caller's step,
      // synchronous from here, would debit without it (refused, or, for a debit written at the
      // next batch like the proxy's charges, failing there). Taken again.
      const leases = this.leases;
      if (!needs.spend?.length || !leases || attempt >= 10 || needs.spend.every((id) => leases.holds(id)))
        return;
    }
  }

  private async ensureOnce(needs: LedgerNeeds): Promise<void> {
    if (needs.spend?.length) {
      // Leases first: what is read below (keys, transfers) is then as fresh as the leased accounts.
      if (this.leases) await this.leases.hold(needs.spend);
      needs = { ...needs, accounts: [...(needs.accounts ?? []), ...needs.spend] };
    }
    const now = this.now();
    // A shared store: absence is never remembered (another instance may have created it since).
    const absent = (m: Map<string, number>, id: string): boolean => !this.leases && m.has(id);
    if (needs.keys?.length) {
      const wanted = needs.keys.filter((k) => !this.touchKey(k, now) && !absent(this.missing.keys, k));
      if (wanted.length > 0 && !this.complete) {
        const found = await this.readFresh(() => this.store.getIdempotency(wanted));
        wanted.forEach((key, i) => {
          // A key this process created meanwhile is resident (kept until durable): memory wins.
          if (this.keys.has(key)) return;
          const r = found[i];
          if (r) place(this.keys, key, r, now, 0);
          else this.remember(this.missing.keys, key, now);
        });
      }
      const named: string[] = [];
      for (const k of needs.keys) {
        const e = this.keys.get(k);
        if (e) named.push(e.value.transferId);
      }
      if (named.length > 0) await this.ensure({ transfers: named });
    }
    if (needs.transfers?.length) {
      const wanted = needs.transfers.filter(
        (id) => !this.pending.has(id) && !this.touchTransfer(id, now) && !absent(this.missing.transfers, id),
      );
      if (wanted.length > 0 && !this.complete) {
        const found = await this.readFresh(() => this.store.getTransfers(wanted));
        wanted.forEach((id, i) => {
          if (this.pending.has(id) || this.recent.has(id)) return;
          const t = found[i];
          if (t && t.state !== 'pending') place(this.recent, id, t, now, 0);
          else if (!t) this.remember(this.missing.transfers, id, now);
        });
      }
    }
    if (needs.accounts?.length && this.leases) {
      await this.readShared(needs.accounts, now);
      return;
    }
    if (needs.accounts?.length) {
      const wanted = needs.accounts.filter(
        (id) => !this.touchAccount(id, now) && !this.missing.accounts.has(id),
      );
      if (wanted.length > 0 && !this.complete) {
        const found = await this.readFresh(() => this.store.getAccounts(wanted));
        wanted.forEach((id, i) => {
          if (this.accounts.has(id)) return;
          const r = found[i];
          if (r) this.install(r, now);
          else this.remember(this.missing.accounts, id, now);
        });
      }
    }
  }

  /**
   * A shared store: true when this instance holds the leases of `ids` now, each marked used (so
   * not handed over before the synchronous step that follows); always true on a store one process
   * owns. `ensure({ spend })` takes them; what it reads after that may outlast a lease's idle time.
   */
  holdsLeases(ids: readonly string[]): boolean {
    const leases = this.leases;
    return leases === undefined || ids.every((id) => leases.epochOf(id) !== undefined);
  }

  /**
   * True when `ensure({ accounts })` would read nothing: each account is resident (marked used
   * now, so it stays so for the synchronous step) or known not to exist. Never on a shared store.
   */
  resident(accounts: readonly string[]): boolean {
    // A shared store: another instance may have changed them; `ensure` reads them (and leases).
    if (this.leases) return false;
    const now = this.now();
    for (const id of accounts)
      if (!this.touchAccount(id, now) && !this.missing.accounts.has(id) && !this.complete) return false;
    return true;
  }

  /**
   * A shared store: true when a synchronous step may debit `payer` and credit `others` now, with
   * no `ensure` first: this instance holds the payer's lease (the lease may have been handed over
   * to another instance since it was taken) and every account is resident (marked used now).
   * Always true on a store of one instance, whose callers keep what they need resident.
   */
  spendable(payer: string, others: readonly string[] = []): boolean {
    if (!this.leases) return true;
    const now = this.now();
    if (!this.leases.holds(payer) || !this.touchAccount(payer, now)) return false;
    for (const id of others) if (!this.touchAccount(id, now) && !this.missing.accounts.has(id)) return false;
    return true;
  }

  /** `change`: one event per durable batch that moved funds (listeners must not throw). */
  on(event: 'change', listener: (c: LedgerChange) => void): () => void;
  on(event: 'fatal', listener: (err: unknown) => void): () => void;
  /**
   * `leased`: a shared store: this instance took these accounts' leases and read them afresh
   * (before any debit may use them): what it keeps of them elsewhere (policies) may be stale.
   */
  on(event: 'leased', listener: (accountIds: string[]) => void): () => void;
  on(
    event: 'change' | 'fatal' | 'leased',
    listener: ((c: LedgerChange) => void) | ((err: unknown) => void) | ((ids: string[]) => void),
  ): () => void {
    const l = listener as (...args: unknown[]) => void;
    this.events.on(event, l);
    return () => this.events.off(event, l);
  }

  // ---- accounts -------------------------------------------------------------------------

  createAccount(input: {
    id?: string;
    kind: AccountKind;
    name: string;
    allowNegative?: boolean;
  }): Applied<Account> {
    this.assertHealthy();
    const id = input.id ?? randomUUID();
    if (!ACCOUNT_ID.test(id))
      throw new LedgerError(
        LedgerErrorCode.INVALID_ACCOUNT_ID,
        'an account id is 1 to 128 letters, digits, _ - . or :, not led by a dot',
      );
    if (this.accounts.has(id)) throw new LedgerError(LedgerErrorCode.ACCOUNT_EXISTS, `account ${id} exists`);
    // A generated id is new; a chosen one must have been looked up (`ensure`) unless memory is complete.
    if (input.id !== undefined && !this.complete && !this.missing.accounts.has(id))
      throw new NotResidentError(`account ${id}`);
    const account: Account = {
      id,
      kind: input.kind,
      name: input.name,
      allowNegative: input.allowNegative ?? false,
      frozen: false,
      creditsPosted: 0n,
      debitsPosted: 0n,
      creditsPending: 0n,
      debitsPending: 0n,
      createdAt: this.now(),
    };
    place(this.accounts, id, { account, spend: undefined }, this.now(), 0);
    this.missing.accounts.delete(id);
    const durable = this.persist(
      [{ ...this.accountWrite(account), created: true }],
      [{ type: 'account_created', accountIds: [id], detail: input.kind }],
    );
    return { value: { ...account }, durable, replayed: false };
  }

  /** The account, from memory or disk (then kept in memory); undefined if there is none. */
  async getAccount(id: string): Promise<Account | undefined> {
    await this.ensure({ accounts: [id] });
    return this.accountNow(id);
  }

  /** The account, from memory or disk; ACCOUNT_NOT_FOUND (404) if there is none. */
  async requireAccount(id: string): Promise<Account> {
    const a = await this.getAccount(id);
    if (!a) throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${id}`);
    return a;
  }

  /**
   * The account as of now, synchronously, for use inside a synchronous step after `ensure`:
   * undefined if it is known not to exist; throws NotResidentError if it was not loaded.
   */
  accountNow(id: string): Account | undefined {
    const r = this.accounts.get(id);
    if (r) {
      this.touch(this.accounts, id, r, this.now());
      return { ...r.value.account };
    }
    if (this.complete || this.missing.accounts.has(id)) return undefined;
    throw new NotResidentError(`account ${id}`);
  }

  /** Accounts in id order, a page at a time, from disk (as of now: memory is ahead of disk). */
  async listAccounts(options: { after?: string; limit: number }): Promise<Account[]> {
    await this.flush();
    const page = await this.store.listAccounts(options);
    return page.map((r) => {
      const live = this.accounts.get(r.account.id);
      return { ...(live ? live.value.account : r.account) };
    });
  }

  /**
   * Accounts whose id or name (in lower case) starts with `prefix`, a page at a time from the
   * store's indexes (`after`: the previous page's `next`), as of now.
   */
  async searchAccounts(options: AccountSearch): Promise<{ accounts: Account[]; next?: string }> {
    await this.flush();
    const page = await this.store.searchAccounts(options);
    return {
      accounts: page.accounts.map((r) => this.live(r.account)),
      ...(page.next ? { next: page.next } : {}),
    };
  }

  /** Frozen accounts in id order, a page at a time from the store's index of frozen accounts. */
  async frozenAccounts(options: { after?: string; limit: number }): Promise<Account[]> {
    await this.flush();
    return (await this.store.frozenAccounts(options)).map((a) => this.live(a.account));
  }

  /** How many accounts are frozen, from the same index. */
  async countFrozen(): Promise<number> {
    await this.flush();
    return this.store.countFrozen();
  }

  /** An account read from disk, or its state in memory when it is resident (memory is ahead). */
  private live(a: Account): Account {
    const r = this.accounts.get(a.id);
    return { ...(r ? r.value.account : a) };
  }

  setFrozen(id: string, frozen: boolean, reason: string): Applied<Account> {
    this.assertHealthy();
    const a = this.mutableAccount(id);
    const fence = this.fence(a);
    if (a.frozen === frozen) return { value: { ...a }, durable: Promise.resolve(), replayed: true };
    a.frozen = frozen;
    const durable = this.persist(
      [{ ...this.accountWrite(a), frozenChanged: true }, ...(fence ? [fence] : [])],
      [{ type: frozen ? 'account_frozen' : 'account_unfrozen', accountIds: [id], detail: reason }],
    );
    return { value: { ...a }, durable, replayed: false };
  }

  // ---- transfers ------------------------------------------------------------------------

  /**
   * Validates and applies a transfer now (throws LedgerError synchronously), durable later.
   * Posted transfers move funds at once; pending ones reserve them until post or void.
   */
  transfer(req: TransferRequest, records: SideRecords = []): Applied<Transfer> {
    this.assertHealthy();
    // Only a keyed transfer has a fingerprint to compare and keep.
    const fingerprint =
      req.idempotencyKey === undefined
        ? ''
        : `${req.debitAccountId}|${req.creditAccountId}|${req.amount}|${req.code}|${req.pending === true}`;
    if (req.idempotencyKey !== undefined) {
      const seen = this.keyNow(req.idempotencyKey);
      if (seen) {
        if (seen.fingerprint !== fingerprint) {
          throw new LedgerError(
            LedgerErrorCode.IDEMPOTENCY_CONFLICT,
            'idempotency key reused with different arguments',
            {
              transferId: seen.transferId,
            },
          );
        }
        const first = this.transferNow(seen.transferId);
        if (first) return { value: { ...first }, durable: this.commit.barrier(), replayed: true };
      }
    }
    if (req.amount <= 0n)
      throw new LedgerError(LedgerErrorCode.AMOUNT_MUST_BE_POSITIVE, 'amount must be positive');
    if (req.debitAccountId === req.creditAccountId)
      throw new LedgerError(LedgerErrorCode.SAME_ACCOUNT, 'cannot transfer to the same account');
    if (
      req.timeoutMs !== undefined &&
      (!req.pending || !Number.isInteger(req.timeoutMs) || req.timeoutMs <= 0)
    ) {
      throw new LedgerError(
        LedgerErrorCode.INVALID_TIMEOUT,
        'timeoutMs needs a pending transfer and a positive integer',
      );
    }
    const id = req.id ?? randomUUID();
    if (this.pending.has(id) || this.recent.has(id))
      throw new LedgerError(LedgerErrorCode.TRANSFER_EXISTS, `transfer ${id} exists`);
    const debit = this.mutableAccount(req.debitAccountId);
    const credit = this.mutableAccount(req.creditAccountId);
    const fence = this.fence(debit);
    if (debit.frozen) throw new LedgerError(LedgerErrorCode.ACCOUNT_FROZEN, `account ${debit.id} is frozen`);
    if (!debit.allowNegative && availableOf(debit) < req.amount) {
      throw new LedgerError(
        LedgerErrorCode.INSUFFICIENT_FUNDS,
        `account ${debit.id} has ${availableOf(debit)} msat available, needs ${req.amount}`,
        {
          available: availableOf(debit).toString(),
          required: req.amount.toString(),
        },
      );
    }
    // One ceiling for every credit path (funding, invoices, transfers, releases, streams...): no
    // balance may leave ±MAX_MSAT, counting what is pending (pending credits may still post).
    const debitFloor = debit.creditsPosted - debit.debitsPosted - debit.debitsPending - req.amount;
    if (!fitsCredit(credit, req.amount)) throw balanceLimit(credit.id);
    if (debitFloor < -MAX_MSAT) throw balanceLimit(debit.id);
    const now = this.now();
    const t: Transfer = {
      id,
      debitAccountId: debit.id,
      creditAccountId: credit.id,
      amount: req.amount,
      state: req.pending ? 'pending' : 'posted',
      code: req.code,
      createdAt: now,
    };
    // Optional fields assigned, not spread (no intermediate objects; same field order).
    if (req.memo !== undefined) t.memo = req.memo;
    if (req.idempotencyKey !== undefined) t.idempotencyKey = req.idempotencyKey;
    if (req.timeoutMs !== undefined) t.timeoutAt = now + req.timeoutMs;
    if (!req.pending) t.resolvedAt = now;
    if (SPEND_CODES.has(req.code)) t.spentAt = this.spendOf(debit.id).add(now, req.amount);
    if (req.pending) {
      this.countPending(t, 1);
      debit.debitsPending += req.amount;
      credit.creditsPending += req.amount;
    } else {
      debit.debitsPosted += req.amount;
      credit.creditsPosted += req.amount;
    }
    if (req.pending) this.pending.set(id, t);
    else this.rememberFinal(t);
    const writes: LedgerWrite[] = [
      { type: 'transfer', transfer: t },
      this.accountWrite(debit),
      this.accountWrite(credit),
    ];
    if (fence) writes.push(fence);
    if (req.idempotencyKey !== undefined) {
      place(
        this.keys,
        req.idempotencyKey,
        { transferId: id, fingerprint, at: now },
        now,
        this.commit.filling,
      );
      this.missing.keys.delete(req.idempotencyKey);
      writes.push({ type: 'idempotency', key: req.idempotencyKey, transferId: id, fingerprint, at: now });
    }
    const durable = this.persist(
      writes,
      [
        {
          type: 'transfer_created',
          accountIds: [debit.id, credit.id],
          transferId: id,
          amount: req.amount.toString(),
          detail: t.state,
        },
      ],
      records,
    );
    return { value: { ...t }, durable, replayed: false };
  }

  /**
   * Throws BALANCE_LIMIT_EXCEEDED (409) if `accountId` could not take a credit of `amount` now: the
   * ceiling every transfer applies. Lets a caller refuse before an irreversible step (posting a
   * lock, settling an HTLC) instead of failing half-way; checked and acted on in the same tick, the
   * answer holds.
   */
  assertCanCredit(accountId: string, amount: Msat): void {
    if (!fitsCredit(this.mutableAccount(accountId), amount)) throw balanceLimit(accountId);
  }

  /** Completes a pending transfer, moving `amount` (at most what was reserved; the rest returns). */
  post(id: string, amount?: Msat, records: SideRecords = []): Applied<Transfer> {
    this.assertHealthy();
    const t = this.mutableTransfer(id);
    if (t.state === 'posted' && (amount === undefined || amount === t.amount))
      return { value: { ...t }, durable: this.commit.barrier(), replayed: true };
    if (t.state !== 'pending')
      throw new LedgerError(LedgerErrorCode.TRANSFER_NOT_PENDING, `transfer ${id} is ${t.state}`);
    const final = amount ?? t.amount;
    const advanced = t.advanced ?? 0n;
    if (final < advanced)
      throw new LedgerError(
        LedgerErrorCode.POST_BELOW_ADVANCED,
        `cannot post ${final}: ${advanced} of this transfer has already moved`,
      );
    if (final > t.amount)
      throw new LedgerError(
        LedgerErrorCode.POST_EXCEEDS_PENDING,
        `cannot post ${final} of a ${t.amount} reservation`,
      );
    if (final <= 0n)
      throw new LedgerError(
        LedgerErrorCode.AMOUNT_MUST_BE_POSITIVE,
        'posted amount must be positive; void instead',
      );
    const debit = this.mutableAccount(t.debitAccountId);
    const credit = this.mutableAccount(t.creditAccountId);
    const fence = this.fence(debit);
    debit.debitsPending -= t.amount - advanced;
    credit.creditsPending -= t.amount - advanced;
    debit.debitsPosted += final - advanced;
    credit.creditsPosted += final - advanced;
    if (t.spentAt !== undefined && final < t.amount)
      this.spendOf(debit.id).remove(t.spentAt, t.amount - final, 0);
    this.countPending(t, -1);
    t.amount = msat(final);
    delete t.advanced;
    t.state = 'posted';
    t.resolvedAt = this.now();
    this.pending.delete(id);
    this.rememberFinal(t);
    const durable = this.persist(
      this.pendingChange(t, debit, credit, fence),
      [
        {
          type: 'transfer_posted',
          accountIds: [debit.id, credit.id],
          transferId: id,
          amount: final.toString(),
        },
      ],
      records,
    );
    return { value: { ...t }, durable, replayed: false };
  }

  /**
   * Releases a pending transfer: the reservation returns to the debit account. A transfer that was
   * partly advanced keeps what moved: it is posted at that amount and only the rest returns.
   */
  void(id: string, reason = '', records: SideRecords = []): Applied<Transfer> {
    this.assertHealthy();
    const t = this.mutableTransfer(id);
    if (t.state === 'voided') return { value: { ...t }, durable: this.commit.barrier(), replayed: true };
    if (t.state !== 'pending')
      throw new LedgerError(LedgerErrorCode.TRANSFER_NOT_PENDING, `transfer ${id} is ${t.state}`);
    if (t.advanced !== undefined && t.advanced > 0n) return this.post(id, t.advanced, records);
    const debit = this.mutableAccount(t.debitAccountId);
    const credit = this.mutableAccount(t.creditAccountId);
    const fence = this.fence(debit);
    debit.debitsPending -= t.amount;
    credit.creditsPending -= t.amount;
    if (t.spentAt !== undefined) this.spendOf(debit.id).remove(t.spentAt, t.amount, 1);
    this.countPending(t, -1);
    t.state = 'voided';
    t.resolvedAt = this.now();
    this.pending.delete(id);
    this.rememberFinal(t);
    const durable = this.persist(
      this.pendingChange(t, debit, credit, fence),
      [
        {
          type: 'transfer_voided',
          accountIds: [debit.id, credit.id],
          transferId: id,
          amount: t.amount.toString(),
          detail: reason,
        },
      ],
      records,
    );
    return { value: { ...t }, durable, replayed: false };
  }

  /**
   * Moves `delta` of a pending transfer from reserved to posted, keeping the rest reserved (a
   * stream paying out of its prepaid chunk). No journal entry: the final post records the total.
   */
  advance(id: string, delta: Msat, records: SideRecords = []): Applied<Transfer> {
    this.assertHealthy();
    const t = this.mutableTransfer(id);
    if (t.state !== 'pending')
      throw new LedgerError(LedgerErrorCode.TRANSFER_NOT_PENDING, `transfer ${id} is ${t.state}`);
    if (delta <= 0n) throw new LedgerError(LedgerErrorCode.AMOUNT_MUST_BE_POSITIVE, 'delta must be positive');
    const advanced = (t.advanced ?? 0n) + delta;
    if (advanced > t.amount)
      throw new LedgerError(
        LedgerErrorCode.POST_EXCEEDS_PENDING,
        `cannot advance to ${advanced} of a ${t.amount} reservation`,
      );
    const debit = this.mutableAccount(t.debitAccountId);
    const credit = this.mutableAccount(t.creditAccountId);
    const fence = this.fence(debit);
    debit.debitsPending -= delta;
    credit.creditsPending -= delta;
    debit.debitsPosted += delta;
    credit.creditsPosted += delta;
    t.advanced = msat(advanced);
    const durable = this.persist(this.pendingChange(t, debit, credit, fence), [], records);
    return { value: { ...t }, durable, replayed: false };
  }

  /** Voids every pending transfer whose timeout has passed; returns them. */
  expirePending(): Transfer[] {
    const now = this.now();
    const expired: Transfer[] = [];
    for (const t of [...this.pending.values()]) {
      if (t.timeoutAt !== undefined && t.timeoutAt <= now) expired.push(this.void(t.id, 'timeout').value);
    }
    return expired;
  }

  /**
   * The idempotency rule of client requests (see `idempotency.ts`): runs `create` once per
   * (account, key); a retry with the same request gets `replay(id)`, a different request under
   * the same key is refused with IDEMPOTENCY_CONFLICT. `create` commits `records(id)` in the same
   * batch as what it creates. Keys are remembered for the retention window.
   */
  idempotent<T>(
    req: IdempotentRequest,
    create: (records: (ref: string) => IdempotencyRecords) => Promise<T>,
    replay: (ref: string) => T | Promise<T>,
  ): Promise<T> {
    return this.requests.run(req, create, replay);
  }

  /**
   * Runs `fn` with the account's debits bound to the lease this instance holds now (a shared
   * store; elsewhere just runs it): a debit after the lease changed hands is refused
   * (LEASE_NOT_HELD), so what `fn` read before it (an idempotency record) still holds when the
   * debit is written. Used by `idempotent`.
   */
  async underLease<T>(accountId: string, fn: () => Promise<T>): Promise<T> {
    if (!this.leases) return fn();
    await this.ensure({ spend: [accountId] });
    const epoch = this.leases.epochOf(accountId);
    if (epoch === undefined)
      throw new LedgerError(
        LedgerErrorCode.LEASE_NOT_HELD,
        `the lease of account ${accountId} was handed over; retry`,
      );
    return this.bound.run({ accountId, epoch }, fn);
  }

  /** Registers a client key used before `idempotent` existed (see IdempotencyKeys.adopt). */
  adoptIdempotencyKey(accountId: string, key: string, operation: string, ref: string, at: number): void {
    this.requests.adopt(accountId, key, operation, ref, at);
  }

  /** The transfer a ledger idempotency key already produced, if any (within the retention window). */
  async findByIdempotencyKey(key: string): Promise<Transfer | undefined> {
    await this.ensure({ keys: [key] });
    const seen = this.keyNow(key);
    return seen ? this.getTransfer(seen.transferId) : undefined;
  }

  /** A transfer in memory (every pending one, recently used final ones), else undefined. */
  getTransferSync(id: string): Transfer | undefined {
    const t = this.pending.get(id) ?? this.recent.get(id)?.value;
    return t ? { ...t } : undefined;
  }

  async getTransfer(id: string): Promise<Transfer | undefined> {
    await this.ensure({ transfers: [id] });
    return this.getTransferSync(id) ?? (this.complete ? undefined : this.store.getTransfer(id));
  }

  /** True while the account has a pending transfer (either side): it stays resident meanwhile. */
  hasPending(accountId: string): boolean {
    return this.pendingOf.has(accountId);
  }

  pendingTransfers(): Transfer[] {
    return [...this.pending.values()].map((t) => ({ ...t }));
  }

  /** What is in memory, for monitoring. */
  stats(): {
    accounts: number;
    pending: number;
    recentTransfers: number;
    keys: number;
    /** Cache items looked at by eviction since the ledger opened (its cost: bounded per batch). */
    evictionVisits: number;
  } {
    return {
      accounts: this.accounts.size,
      pending: this.pending.size,
      recentTransfers: this.recent.size,
      keys: this.keys.size,
      evictionVisits: this.evictionVisits,
    };
  }

  /**
   * Deletes up to `limit` ledger idempotency keys older than the retention window from disk (an
   * index by time finds them); runs every 10 minutes. Returns how many it deleted.
   */
  async sweepKeys(limit = 1000): Promise<number> {
    if (this.failure !== undefined) return 0;
    const old = await this.store.expiredIdempotency(this.now() - this.retentionMs, limit);
    if (old.length === 0) return 0;
    // The records' own times: a key used again since (on disk, or a new transfer under it,
    // resident until durable and after, so seen here) keeps its record: only the old index entry
    // goes. Nothing is awaited between this check and queuing the delete.
    const stored = await this.store.getIdempotency(old.map((o) => o.key));
    const writes: LedgerWrite[] = [];
    for (const [i, o] of old.entries()) {
      const live = this.keys.get(o.key);
      const own = stored[i];
      const reused = (live !== undefined && live.value.at !== o.at) || (own !== undefined && own.at !== o.at);
      if (!reused) this.keys.delete(o.key);
      writes.push({ type: 'idempotency_expired', key: o.key, at: o.at, keepRecord: reused });
    }
    await this.commit.add(writes);
    return old.length;
  }

  /**
   * Deletes up to `limit` client idempotency keys (`idem!`) past the retention window, with their
   * time index entries (see IdempotencyKeys.sweep); runs every 10 minutes with `sweepKeys`.
   */
  sweepRequestKeys(limit = 1000): Promise<number> {
    if (this.failure !== undefined) return Promise.resolve(0);
    return this.requests.sweep(limit);
  }

  /**
   * The one-off time indexing of keys written before their index existed, so that the sweeps
   * find them: ledger keys (without a time index entry, dated from their transfer) and client keys
   * (`idem!` without `idemat!`). Paged, in the background from `open`, resumable (a mark holds
   * the cursor: a crash redoes at most a page); later calls share the run.
   */
  indexKeys(): Promise<void> {
    return (this.indexing ??= Promise.all([this.indexLedgerKeys(), this.requests.reindex()]).then(
      () => undefined,
    ));
  }

  private async indexLedgerKeys(): Promise<void> {
    const stored = await this.store.getRecord(KEY_INDEX_MARK);
    let mark = stored === undefined ? {} : (JSON.parse(stored) as { after?: string; done?: boolean });
    while (mark.done !== true) {
      const page = await this.store.undatedIdempotency({
        limit: 1000,
        ...(mark.after !== undefined ? { after: mark.after } : {}),
      });
      mark = page.next !== undefined ? { after: page.next } : { done: true };
      const writes = page.keys.map((k): LedgerWrite => ({
        type: 'idempotency_indexed',
        key: k.key,
        at: k.at,
      }));
      await this.persist(writes, [], [{ key: KEY_INDEX_MARK, value: JSON.stringify(mark) }]);
    }
  }

  /**
   * The spend figures of a resident account, read synchronously from its spend buckets (O(buckets),
   * no history): what budgets, rates and in-flight limits are checked against.
   */
  spending(accountId: string, now = this.now()): SpendFigures {
    this.mutableAccount(accountId);
    const buckets = this.accounts.get(accountId)?.value.spend;
    return {
      spentSince: (since) => buckets?.spentSince(since, now) ?? 0n,
      countSince: (since) => buckets?.countSince(since, now) ?? 0,
      inFlight: this.inFlight.get(accountId) ?? 0,
    };
  }

  journal(accountId: string, options: { limit: number; beforeSeq?: number }): Promise<JournalEntry[]> {
    return this.store.journal(accountId, options);
  }

  /** Writes side records (group-committed like everything else). */
  putRecords(records: SideRecords): Promise<void> {
    this.assertHealthy();
    return this.persist(
      records.map((r): LedgerWrite => ({ type: 'record', key: r.key, value: r.value })),
      [],
    );
  }

  getRecord(key: string): Promise<string | undefined> {
    return this.store.getRecord(key);
  }

  listRecords(
    prefix: string,
    options?: { limit?: number; reverse?: boolean; after?: string },
  ): Promise<StoredRecord[]> {
    return this.store.listRecords(prefix, options);
  }

  /** Compacts a live index of side records (see `LedgerStore.compactRecords`). */
  async compactRecords(prefix: string): Promise<void> {
    await this.store.compactRecords?.(prefix);
  }

  /**
   * Registers a function run at the start of a group-commit batch asked for with `wantCommit`:
   * operations it makes (e.g. the sum of many small charges as one transfer) join that batch.
   * It must not throw. `unwritten`, if given, tells the accounts it holds debits of that are not
   * written yet: on a shared store their leases are not handed over before it wrote them (the
   * debits were checked under the lease held now). Returns a function that removes it.
   */
  beforeCommit(prepare: () => void, unwritten?: (accountId: string) => boolean): () => void {
    const detach = this.commit.beforeBatch(prepare);
    if (!unwritten) return detach;
    this.unwritten.push(unwritten);
    return () => {
      detach();
      const i = this.unwritten.indexOf(unwritten);
      if (i >= 0) this.unwritten.splice(i, 1);
    };
  }

  /** What `beforeCommit` preparers hold unwritten, by account (see there). */
  private readonly unwritten: ((accountId: string) => boolean)[] = [];

  /** Asks for a group-commit batch as soon as possible, for a `beforeCommit` preparer with work. */
  wantCommit(): void {
    this.commit.want();
  }

  /** Resolves when everything applied so far is durable. */
  flush(): Promise<void> {
    return this.commit.barrier();
  }

  get batchesWritten(): number {
    return this.commit.batches;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.indexing?.catch(() => undefined);
    await this.commit.drain();
    await this.leases?.stop();
    await this.store.close();
  }

  // ---- internals ------------------------------------------------------------------------

  /** Files a transfer that just became final (new, or pending until now: never in `recent` yet). */
  private rememberFinal(t: Transfer): void {
    place(this.recent, t.id, t, this.now(), this.commit.filling);
  }

  /**
   * A store written before accounts kept spend buckets: budgets and rates would forget what was
   * spent in their windows. Once (a mark records it), the spending debits of the last 30 days are
   * counted into their accounts' buckets from the transfers, oldest first, a page at a time; a
   * pending one keeps the time it was counted at, so its void or post takes it out again.
   */
  private async rebuildSpend(): Promise<void> {
    const since = this.now() - SPEND_HORIZON_MS;
    let after: string | undefined;
    do {
      const page = await this.store.transfersCreatedSince(since, {
        limit: 2000,
        ...(after !== undefined ? { after } : {}),
      });
      const spending = page.transfers.filter(
        (t) => SPEND_CODES.has(t.code) && t.state !== 'voided' && t.spentAt === undefined,
      );
      const accounts = [...new Set(spending.map((t) => t.debitAccountId))];
      await this.ensure({ accounts });
      const writes: LedgerWrite[] = [];
      for (const t of spending) {
        const spentAt = this.spendOf(t.debitAccountId).add(t.createdAt, t.amount);
        const live = this.pending.get(t.id);
        if (live) {
          live.spentAt = spentAt;
          writes.push({ type: 'transfer', transfer: live });
        }
      }
      for (const id of accounts) writes.push(this.accountWrite(this.mutableAccount(id)));
      if (writes.length > 0) await this.persist(writes, []);
      after = page.next;
    } while (after !== undefined);
  }

  /**
   * A shared store: the fence of a debit (or freeze) of `a`, which this instance must hold the
   * lease of (`ensure({ spend })`), else LEASE_NOT_HELD. None for an account that may go negative
   * (nothing to overdraw) or a store one process owns.
   */
  private fence(a: Account): (LedgerWrite & { type: 'fence' }) | undefined {
    if (!this.leases || a.allowNegative) return undefined;
    const epoch = this.leases.epochOf(a.id);
    const bound = this.bound.getStore();
    if (epoch === undefined || (bound?.accountId === a.id && bound.epoch !== epoch))
      throw new LedgerError(
        LedgerErrorCode.LEASE_NOT_HELD,
        `this instance does not hold the lease of account ${a.id} (it was handed over); retry`,
      );
    return { type: 'fence', accountId: a.id, epoch };
  }

  /**
   * The write of an account record (with its spend buckets, on a shared store only while this
   * instance holds the lease: another's memory of them is behind); marks the account dirty.
   */
  private accountWrite(a: Account): LedgerWrite & { type: 'account' } {
    const r = this.accounts.get(a.id);
    if (r) r.batch = this.commit.filling;
    const spend = !this.leases || this.leases.holds(a.id) ? r?.value.spend : undefined;
    return spend ? { type: 'account', account: a, spend } : { type: 'account', account: a };
  }

  private spendOf(accountId: string): SpendBuckets {
    const r = this.accounts.get(accountId)!.value;
    return (r.spend ??= new SpendBuckets());
  }

  /**
   * Pending transfers per account (their accounts stay resident) and in-flight payments (pending
   * `payment` transfers, counted on their debit account).
   */
  private countPending(t: Transfer, delta: 1 | -1): void {
    bump(this.pendingOf, t.debitAccountId, delta);
    bump(this.pendingOf, t.creditAccountId, delta);
    if (t.code === 'payment') bump(this.inFlight, t.debitAccountId, delta);
  }

  private install(r: StoredAccount, now: number): void {
    place(
      this.accounts,
      r.account.id,
      { account: r.account, spend: r.spend ? SpendBuckets.from(r.spend) : undefined },
      now,
      0,
    );
  }

  /** The account has changes not durable yet (memory is ahead of the store). */
  private dirty(id: string): boolean {
    return (this.accounts.get(id)?.batch ?? 0) > this.commit.batches;
  }

  /**
   * A shared store: reads the accounts another instance may have changed — every one whose lease
   * this instance does not hold, a leased one at most once a second (credits made elsewhere) —
   * unless memory is ahead (changes of this instance not durable yet).
   */
  private async readShared(ids: readonly string[], now: number): Promise<void> {
    const stale = [...new Set(ids)].filter((id) => {
      const r = this.accounts.get(id);
      if (!r) return true;
      this.touch(this.accounts, id, r, now);
      if (this.dirty(id)) return false;
      return !this.leases?.holds(id) || (r.value.readAt ?? 0) < now - LEASED_FRESH_MS;
    });
    if (stale.length > 0) await this.readAccounts(stale);
  }

  /**
   * A newly leased account is read once this instance's own writes are durable, until a read
   * lands with no change of this instance made meanwhile: its memory is then the truth.
   */
  private async readLeased(ids: string[]): Promise<void> {
    const taken = ids;
    for (let attempt = 1; ids.length > 0; attempt++) {
      if (attempt > 20)
        throw new LedgerError(LedgerErrorCode.LEASE_BUSY, 'the account kept changing while it was read');
      await this.flush();
      ids = await this.readAccounts(ids);
    }
    await this.readPendingDebits(taken);
    this.events.emit('leased', taken);
  }

  /**
   * A shared store, a lease just taken: the pending transfers debiting these accounts as the
   * store has them (another holder may have created, advanced, posted or voided some since this
   * instance last held the lease), their credit accounts read too (a post moves them). While the
   * lease is held no other instance can change them (post, void and advance are fenced by it).
   */
  private async readPendingDebits(ids: string[]): Promise<void> {
    const stored = await this.store.leases!.pendingDebits(ids);
    this.dropPending(ids);
    for (const t of stored) {
      this.pending.set(t.id, t);
      this.countPending(t, 1);
    }
    const credits = [...new Set(stored.map((t) => t.creditAccountId))];
    if (credits.length > 0) await this.readShared(credits, this.now());
  }

  /**
   * A shared store: forgets the pending transfers debiting accounts whose lease this instance no
   * longer holds (read afresh with the lease when it is taken again): memory stays bounded by
   * what this instance is spending, and nothing stale is posted from it.
   */
  private dropPending(ids: readonly string[]): void {
    if (ids.length === 0 || this.pending.size === 0) return;
    const gone = new Set(ids);
    for (const t of [...this.pending.values()])
      if (gone.has(t.debitAccountId)) {
        this.pending.delete(t.id);
        this.countPending(t, -1);
      }
  }

  /**
   * The writes of a pending transfer's post, void or advance: the transfer, both accounts and (a
   * shared store) the fence of its debit, taken before anything changed.
   */
  private pendingChange(
    t: Transfer,
    debit: Account,
    credit: Account,
    fence: (LedgerWrite & { type: 'fence' }) | undefined,
  ): LedgerWrite[] {
    const writes: LedgerWrite[] = [
      { type: 'transfer', transfer: t },
      this.accountWrite(debit),
      this.accountWrite(credit),
    ];
    if (fence) writes.push(fence);
    return writes;
  }

  /** The store is shared by several instances (debits under account leases). */
  get shared(): boolean {
    return this.leases !== undefined;
  }

  /**
   * Reads accounts from the store into memory, except those changed in memory during the read
   * (memory is ahead): returned, kept as they are.
   */
  private async readAccounts(ids: string[]): Promise<string[]> {
    const before = ids.map((id) => this.accounts.get(id)?.batch);
    const found = await this.readFresh(() => this.store.getAccounts(ids));
    const now = this.now();
    const kept: string[] = [];
    ids.forEach((id, i) => {
      const cur = this.accounts.get(id);
      if (cur && (cur.batch !== before[i] || this.dirty(id))) {
        kept.push(id);
        return;
      }
      const r = found[i];
      if (!r) {
        if (!cur) this.remember(this.missing.accounts, id, now);
        return;
      }
      this.missing.accounts.delete(id);
      if (!cur) {
        this.install(r, now);
        this.accounts.get(id)!.value.readAt = now;
        return;
      }
      Object.assign(cur.value.account, r.account);
      cur.value.spend = r.spend ? SpendBuckets.from(r.spend) : undefined;
      cur.value.readAt = now;
    });
    return kept;
  }

  /** Reads from disk until no eviction overlapped the read (what it missed is on disk by then). */
  private async readFresh<T>(read: () => Promise<T>): Promise<T> {
    for (;;) {
      const before = this.evictions;
      const out = await read();
      if (this.evictions === before) return out;
    }
  }

  private remember(m: Map<string, number>, id: string, now: number): void {
    m.set(id, now);
    if (m.size <= MISSING_KEPT) return;
    for (const [k, at] of m) {
      if (m.size <= MISSING_KEPT || at > now - PINNED_MS) break;
      m.delete(k);
    }
  }

  /**
   * Marks an item used now, moving it to the young end of its cache at most once a second (an
   * item used more often than that still moves every second, so a hot item never sits at the old
   * end and holds eviction up).
   */
  private touch<T>(m: Map<string, Resident<T>>, id: string, r: Resident<T>, now: number): void {
    if (r.placedAt < now - 1000) {
      m.delete(id);
      m.set(id, r);
      r.placedAt = now;
    }
    r.touchedAt = now;
  }

  private touchAccount(id: string, now: number): boolean {
    const r = this.accounts.get(id);
    if (r) this.touch(this.accounts, id, r, now);
    return r !== undefined;
  }

  private touchTransfer(id: string, now: number): boolean {
    const r = this.recent.get(id);
    if (r) this.touch(this.recent, id, r, now);
    return r !== undefined;
  }

  private touchKey(key: string, now: number): boolean {
    const r = this.keys.get(key);
    if (r) this.touch(this.keys, key, r, now);
    return r !== undefined;
  }

  /** A ledger key within its retention window, or undefined if it has none; throws if not loaded. */
  private keyNow(key: string): KeyEntry | undefined {
    const r = this.keys.get(key);
    if (r) {
      this.touch(this.keys, key, r, this.now());
      return r.value.at >= this.now() - this.retentionMs ? r.value : undefined;
    }
    if (this.complete || this.missing.keys.has(key)) return undefined;
    throw new NotResidentError(`idempotency key ${key}`);
  }

  /** A transfer in memory; undefined if known not to exist; throws if not loaded. */
  private transferNow(id: string): Transfer | undefined {
    const t = this.pending.get(id);
    if (t) return t;
    const r = this.recent.get(id);
    if (r) {
      this.touch(this.recent, id, r, this.now());
      return r.value;
    }
    if (this.complete || this.missing.transfers.has(id)) return undefined;
    throw new NotResidentError(`transfer ${id}`);
  }

  /**
   * After a durable batch: caches over their size give up their least recently used items that
   * are durable, not used in the last 60 s and (accounts) have no pending transfer. Final
   * transfers are pinned by their use only up to ten times their cache's size: every transfer
   * written becomes one, so past that the time pin would make memory grow with the write rate
   * (their readers `ensure` them right before a synchronous step, which no eviction interrupts).
   */
  private evict(): void {
    const now = this.now();
    const durable = this.commit.batches;
    const sweep = <T>(
      m: Map<string, Resident<T>>,
      max: number,
      keep: (id: string) => boolean,
      pinUpTo = Infinity,
    ): void => {
      let budget = m.size - max + 1000;
      for (const [id, r] of m) {
        if (m.size <= max || budget-- <= 0) return;
        this.evictionVisits += 1;
        // Placed within the last minute: so was every item after it, each used since (the cache
        // is in placing order): all pinned, the walk ends. Without it, every batch walked all the
        // items of the last minute, a cost growing with the write rate.
        const timePinned = m.size <= pinUpTo;
        if (timePinned && r.placedAt > now - PINNED_MS) return;
        // Used within the last minute (placed earlier), not durable yet, or with money in flight:
        // kept, and the walk goes on.
        if ((timePinned && r.touchedAt > now - PINNED_MS) || r.batch > durable || keep(id)) continue;
        m.delete(id);
        this.evictions += 1;
        this.complete = false;
      }
    };
    if (this.accounts.size > this.accountCacheSize)
      sweep(this.accounts, this.accountCacheSize, (id) => this.pendingOf.has(id));
    if (this.recent.size > this.transferCacheSize)
      sweep(this.recent, this.transferCacheSize, () => false, 10 * this.transferCacheSize);
    if (this.keys.size > this.keyCacheSize) sweep(this.keys, this.keyCacheSize, () => false);
  }

  private persist(
    writes: LedgerWrite[],
    entries: Omit<JournalEntry, 'seq' | 'at'>[],
    records: SideRecords = [],
  ): Promise<void> {
    const at = this.now();
    for (const r of records) writes.push({ type: 'record', key: r.key, value: r.value });
    for (const e of entries) writes.push({ type: 'journal', entry: { ...e, seq: ++this.seq, at } });
    const batch = this.commit.add(writes);
    // Every write of a batch shares its promise, and so the one that maps its failure.
    if (batch !== this.batchRaw) {
      this.batchRaw = batch;
      this.batchDurable = batch.catch((err: unknown) => {
        throw new LedgerError(
          LedgerErrorCode.STORAGE_FAILED,
          `ledger write failed: ${(err as Error).message}`,
        );
      });
    }
    return this.batchDurable;
  }

  /** Turns a durable batch into one change event: the accounts its transfers moved funds on. */
  private committed(batch: CommittedBatch): void {
    this.evict();
    if (this.events.listenerCount('change') === 0) return;
    const accounts: Account[] = [];
    for (const a of batch.accounts) if (batch.moved.has(a.id)) accounts.push({ ...a });
    if (accounts.length > 0) this.events.emit('change', { accounts } satisfies LedgerChange);
  }

  private mutableAccount(id: string): Account {
    const r = this.accounts.get(id);
    if (r) {
      this.touch(this.accounts, id, r, this.now());
      return r.value.account;
    }
    if (this.complete || this.missing.accounts.has(id))
      throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${id}`);
    throw new NotResidentError(`account ${id}`);
  }

  private mutableTransfer(id: string): Transfer {
    const t = this.transferNow(id);
    if (!t) throw new LedgerError(LedgerErrorCode.TRANSFER_NOT_FOUND, `no transfer ${id}`);
    return t;
  }

  private assertHealthy(): void {
    if (this.failure !== undefined) {
      throw new LedgerError(
        LedgerErrorCode.STORAGE_FAILED,
        'the ledger stopped after a storage failure; restart the gateway',
      );
    }
  }
}
