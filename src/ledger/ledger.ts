import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { MAX_MSAT, msat, type Msat } from '../domain/msat.js';
import { LedgerError, LedgerErrorCode } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { IdempotencyKeys, type IdempotencyRecords, type IdempotentRequest } from './idempotency.js';
import { SPEND_CODES, SpendBuckets } from './spend-buckets.js';
import type { LedgerStore, LedgerWrite, RecordStore, StoredRecord } from './store.js';
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
  /** How long posted transfers (and their idempotency keys) stay in memory: budgets look back this far. */
  retentionMs?: number;
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
/**
 * Account ids: safe in store keys (no `!`) and in URL paths (never `.` or `..`); `:` marks the
 * gateway's own accounts (`sys:operator`, `l402:<token id>`, `svc:<service>`).
 */
const ACCOUNT_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,127}$/;

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
  private readonly accounts = new Map<string, Account>();
  private readonly transfers = new Map<string, Transfer>();
  private readonly idempotency = new Map<string, { transferId: string; fingerprint: string }>();
  private readonly debits = new Map<string, Transfer[]>();
  private readonly spend = new Map<string, SpendBuckets>();
  /** Pending `payment` transfers per debit account. */
  private readonly inFlight = new Map<string, number>();
  private readonly commit: GroupCommit;
  private readonly events = new EventEmitter();
  private seq: number;
  private failure: unknown;
  private readonly now: () => number;
  private readonly retentionMs: number;
  private readonly requests: IdempotencyKeys;

  private constructor(
    private readonly store: LedgerStore,
    lastSeq: number,
    options: LedgerOptions,
  ) {
    this.seq = lastSeq;
    this.now = options.now ?? Date.now;
    this.retentionMs = options.retentionMs ?? 32 * DAY;
    this.commit = new GroupCommit(
      (writes) => store.commit(writes),
      (err) => {
        this.failure = err;
        this.events.emit('fatal', err);
      },
      (writes) => this.committed(writes),
    );
    this.events.setMaxListeners(0);
    this.requests = new IdempotencyKeys(this, this.now, this.retentionMs);
  }

  static async open(store: LedgerStore, options: LedgerOptions = {}): Promise<Ledger> {
    const now = (options.now ?? Date.now)();
    const retention = options.retentionMs ?? 32 * DAY;
    const snapshot = await store.load(now - retention);
    const ledger = new Ledger(store, snapshot.lastSeq, options);
    for (const { account, spend } of snapshot.accounts) {
      ledger.accounts.set(account.id, account);
      if (spend) ledger.spend.set(account.id, SpendBuckets.from(spend));
    }
    for (const t of snapshot.transfers.sort((x, y) => x.createdAt - y.createdAt)) {
      ledger.remember(t);
      if (t.state === 'pending') ledger.countInFlight(t, 1);
    }
    for (const i of snapshot.idempotency) {
      if (ledger.transfers.has(i.transferId))
        ledger.idempotency.set(i.key, { transferId: i.transferId, fingerprint: i.fingerprint });
    }
    return ledger;
  }

  /** `change`: one event per durable batch that moved funds (listeners must not throw). */
  on(event: 'change', listener: (c: LedgerChange) => void): () => void;
  on(event: 'fatal', listener: (err: unknown) => void): () => void;
  on(
    event: 'change' | 'fatal',
    listener: ((c: LedgerChange) => void) | ((err: unknown) => void),
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
    this.accounts.set(id, account);
    const durable = this.persist(
      [{ type: 'account', account }],
      [{ type: 'account_created', accountIds: [id], detail: input.kind }],
    );
    return { value: { ...account }, durable, replayed: false };
  }

  getAccount(id: string): Account | undefined {
    const a = this.accounts.get(id);
    return a ? { ...a } : undefined;
  }

  requireAccount(id: string): Account {
    const a = this.accounts.get(id);
    if (!a) throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${id}`);
    return { ...a };
  }

  listAccounts(): Account[] {
    return [...this.accounts.values()].map((a) => ({ ...a }));
  }

  setFrozen(id: string, frozen: boolean, reason: string): Applied<Account> {
    this.assertHealthy();
    const a = this.mutableAccount(id);
    if (a.frozen === frozen) return { value: { ...a }, durable: Promise.resolve(), replayed: true };
    a.frozen = frozen;
    const durable = this.persist(
      [this.accountWrite(a)],
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
    const fingerprint = `${req.debitAccountId}|${req.creditAccountId}|${req.amount}|${req.code}|${req.pending === true}`;
    if (req.idempotencyKey !== undefined) {
      const seen = this.idempotency.get(req.idempotencyKey);
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
        const first = this.transfers.get(seen.transferId);
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
    if (this.transfers.has(id))
      throw new LedgerError(LedgerErrorCode.TRANSFER_EXISTS, `transfer ${id} exists`);
    const debit = this.mutableAccount(req.debitAccountId);
    const credit = this.mutableAccount(req.creditAccountId);
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
      ...(req.memo !== undefined ? { memo: req.memo } : {}),
      ...(req.idempotencyKey !== undefined ? { idempotencyKey: req.idempotencyKey } : {}),
      ...(req.timeoutMs !== undefined ? { timeoutAt: now + req.timeoutMs } : {}),
    };
    if (!req.pending) t.resolvedAt = now;
    if (SPEND_CODES.has(req.code)) t.spentAt = this.spendOf(debit.id).add(now, req.amount);
    if (req.pending) {
      this.countInFlight(t, 1);
      debit.debitsPending += req.amount;
      credit.creditsPending += req.amount;
    } else {
      debit.debitsPosted += req.amount;
      credit.creditsPosted += req.amount;
    }
    this.remember(t);
    const writes: LedgerWrite[] = [
      { type: 'transfer', transfer: t },
      this.accountWrite(debit),
      this.accountWrite(credit),
    ];
    if (req.idempotencyKey !== undefined) {
      this.idempotency.set(req.idempotencyKey, { transferId: id, fingerprint });
      writes.push({ type: 'idempotency', key: req.idempotencyKey, transferId: id, fingerprint });
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
    debit.debitsPending -= t.amount - advanced;
    credit.creditsPending -= t.amount - advanced;
    debit.debitsPosted += final - advanced;
    credit.creditsPosted += final - advanced;
    if (t.spentAt !== undefined && final < t.amount)
      this.spendOf(debit.id).remove(t.spentAt, t.amount - final, 0);
    this.countInFlight(t, -1);
    t.amount = msat(final);
    delete t.advanced;
    t.state = 'posted';
    t.resolvedAt = this.now();
    const durable = this.persist(
      [{ type: 'transfer', transfer: t }, this.accountWrite(debit), this.accountWrite(credit)],
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
    debit.debitsPending -= t.amount;
    credit.creditsPending -= t.amount;
    if (t.spentAt !== undefined) this.spendOf(debit.id).remove(t.spentAt, t.amount, 1);
    this.countInFlight(t, -1);
    t.state = 'voided';
    t.resolvedAt = this.now();
    const durable = this.persist(
      [{ type: 'transfer', transfer: t }, this.accountWrite(debit), this.accountWrite(credit)],
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
    debit.debitsPending -= delta;
    credit.creditsPending -= delta;
    debit.debitsPosted += delta;
    credit.creditsPosted += delta;
    t.advanced = msat(advanced);
    const durable = this.persist(
      [{ type: 'transfer', transfer: t }, this.accountWrite(debit), this.accountWrite(credit)],
      [],
      records,
    );
    return { value: { ...t }, durable, replayed: false };
  }

  /** Voids every pending transfer whose timeout has passed; returns them. */
  expirePending(): Transfer[] {
    const now = this.now();
    const expired: Transfer[] = [];
    for (const t of this.transfers.values()) {
      if (t.state === 'pending' && t.timeoutAt !== undefined && t.timeoutAt <= now)
        expired.push(this.void(t.id, 'timeout').value);
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

  /** Registers a client key used before `idempotent` existed (see IdempotencyKeys.adopt). */
  adoptIdempotencyKey(accountId: string, key: string, operation: string, ref: string, at: number): void {
    this.requests.adopt(accountId, key, operation, ref, at);
  }

  /** The transfer an idempotency key already produced, if any (within the retention window). */
  findByIdempotencyKey(key: string): Transfer | undefined {
    const seen = this.idempotency.get(key);
    return seen ? this.getTransferSync(seen.transferId) : undefined;
  }

  getTransferSync(id: string): Transfer | undefined {
    const t = this.transfers.get(id);
    return t ? { ...t } : undefined;
  }

  async getTransfer(id: string): Promise<Transfer | undefined> {
    return this.getTransferSync(id) ?? this.store.getTransfer(id);
  }

  pendingTransfers(): Transfer[] {
    return [...this.transfers.values()].filter((t) => t.state === 'pending').map((t) => ({ ...t }));
  }

  /**
   * The spend figures of a resident account, read synchronously from its spend buckets (O(buckets),
   * no history): what budgets, rates and in-flight limits are checked against.
   */
  spending(accountId: string, now = this.now()): SpendFigures {
    this.mutableAccount(accountId);
    const buckets = this.spend.get(accountId);
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

  /**
   * Registers a function run at the start of a group-commit batch asked for with `wantCommit`:
   * operations it makes (e.g. the sum of many small charges as one transfer) join that batch.
   * It must not throw. Returns a function that removes it.
   */
  beforeCommit(prepare: () => void): () => void {
    return this.commit.beforeBatch(prepare);
  }

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
    await this.commit.drain();
    await this.store.close();
  }

  // ---- internals ------------------------------------------------------------------------

  private remember(t: Transfer): void {
    this.transfers.set(t.id, t);
    let list = this.debits.get(t.debitAccountId);
    if (!list) this.debits.set(t.debitAccountId, (list = []));
    list.push(t);
    if (list.length % 1024 === 0) this.prune(t.debitAccountId);
  }

  private prune(accountId: string): void {
    const cutoff = this.now() - this.retentionMs;
    const list = this.debits.get(accountId) ?? [];
    const keep: Transfer[] = [];
    for (const t of list) {
      if (t.state === 'pending' || t.createdAt >= cutoff) keep.push(t);
      else {
        this.transfers.delete(t.id);
        if (t.idempotencyKey) this.idempotency.delete(t.idempotencyKey);
      }
    }
    this.debits.set(accountId, keep);
  }

  private accountWrite(a: Account): LedgerWrite {
    const spend = this.spend.get(a.id);
    return spend ? { type: 'account', account: a, spend } : { type: 'account', account: a };
  }

  private spendOf(accountId: string): SpendBuckets {
    let s = this.spend.get(accountId);
    if (!s) this.spend.set(accountId, (s = new SpendBuckets()));
    return s;
  }

  /** In-flight payments: pending `payment` transfers, counted on their debit account. */
  private countInFlight(t: Transfer, delta: 1 | -1): void {
    if (t.code !== 'payment') return;
    const n = (this.inFlight.get(t.debitAccountId) ?? 0) + delta;
    if (n > 0) this.inFlight.set(t.debitAccountId, n);
    else this.inFlight.delete(t.debitAccountId);
  }

  private persist(
    writes: LedgerWrite[],
    entries: Omit<JournalEntry, 'seq' | 'at'>[],
    records: SideRecords = [],
  ): Promise<void> {
    const at = this.now();
    for (const r of records) writes.push({ type: 'record', key: r.key, value: r.value });
    for (const e of entries) writes.push({ type: 'journal', entry: { ...e, seq: ++this.seq, at } });
    return this.commit.add(writes).catch((err: unknown) => {
      throw new LedgerError(LedgerErrorCode.STORAGE_FAILED, `ledger write failed: ${(err as Error).message}`);
    });
  }

  /** Turns a durable batch into one change event: the accounts its transfers touched. */
  private committed(writes: LedgerWrite[]): void {
    if (this.events.listenerCount('change') === 0) return;
    const touched = new Set<string>();
    const snapshots = new Map<string, Account>();
    for (const w of writes) {
      if (w.type === 'transfer') touched.add(w.transfer.debitAccountId).add(w.transfer.creditAccountId);
      else if (w.type === 'account') snapshots.set(w.account.id, w.account);
    }
    const accounts: Account[] = [];
    for (const id of touched) {
      const a = snapshots.get(id);
      if (a) accounts.push({ ...a });
    }
    if (accounts.length > 0) this.events.emit('change', { accounts } satisfies LedgerChange);
  }

  private mutableAccount(id: string): Account {
    const a = this.accounts.get(id);
    if (!a) throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${id}`);
    return a;
  }

  private mutableTransfer(id: string): Transfer {
    const t = this.transfers.get(id);
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
