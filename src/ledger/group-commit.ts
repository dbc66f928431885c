import type { Account } from './types.js';
import type { LedgerWrite, StagedBatch } from './store.js';

/**
 * Collects writes from many operations and makes them durable together: while one batch is being
 * written (and fsync'd), the next one fills up. Each write is staged into the filling batch when
 * it is queued (the store encodes it then: a LevelDB chained batch), except account writes: an
 * account updated many times in one batch is staged once, as of the batch's end, when the batch
 * is taken. Taking a batch then only writes it.
 */

/** What a durable batch changed, told once per batch (not per write). */
export interface CommittedBatch {
  /** Every account written, as of the end of the batch (copies). */
  accounts: Account[];
  /** Accounts a transfer of the batch moved funds on (posted or pending), either side. */
  moved: ReadonlySet<string>;
  /** How many writes the batch held. */
  writes: number;
}

/** One batch's outcome, shared by every write queued into it. */
interface BatchWaiters {
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function batchWaiters(): BatchWaiters {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { done, resolve, reject };
}

/** The batch being filled: staged writes, the latest write of each account, what moved. */
interface Filling {
  staged: StagedBatch;
  accounts: Map<string, LedgerWrite & { type: 'account' }>;
  moved: Set<string>;
  waiters: BatchWaiters;
}

export class GroupCommit {
  /**
   * The next batch, created by its first `add`: every add of the batch gets the same promise
   * (they all resolve or fail together), so queuing a write allocates no promise of its own.
   */
  private filling_: Filling | undefined;
  private scheduled = false;
  private writing = false;
  private idle: (() => void)[] = [];
  private readonly preparers = new Set<() => void>();
  /** A preparer has work pending: the next batch must run even without writes of its own. */
  private wanted = false;
  private preparing = false;
  batches = 0;

  constructor(
    /** A new, empty batch of the store. */
    private readonly stage: () => StagedBatch,
    private readonly onFailure: (err: unknown) => void,
    /** Told what each batch changed, once it is durable (before its waiters resume). Must not throw. */
    private readonly onCommitted?: (batch: CommittedBatch) => void,
  ) {}

  private failed: unknown;

  /**
   * The number of the batch that writes queued now will go into (batches are numbered from 1 in
   * order; a batch is durable once `batches` reaches its number).
   */
  get filling(): number {
    return this.batches + (this.writing ? 2 : 1);
  }

  /**
   * Queues writes; resolves once they are durable (the promise is the batch's, shared by every
   * write queued into it). Every write but an account's is encoded now, so the objects it names
   * must hold the state to be written: every change is applied and queued in one synchronous
   * step. Accounts are encoded when the batch is taken (see `flush`).
   */
  add(writes: LedgerWrite[]): Promise<void> {
    // After a failed batch, later batches must not land without it: refuse everything.
    if (this.failed !== undefined) return Promise.reject(this.failed);
    const f = (this.filling_ ??= {
      staged: this.stage(),
      accounts: new Map(),
      moved: new Set(),
      waiters: batchWaiters(),
    });
    for (const w of writes) {
      if (w.type === 'account') {
        // The latest state wins; the index flags of an earlier write of the batch stay with it.
        const prev = f.accounts.get(w.account.id);
        f.accounts.set(
          w.account.id,
          prev !== undefined && (prev.created === true || prev.frozenChanged === true)
            ? {
                ...w,
                created: w.created === true || prev.created === true,
                frozenChanged: w.frozenChanged === true || prev.frozenChanged === true,
              }
            : w,
        );
        continue;
      }
      if (w.type === 'transfer') f.moved.add(w.transfer.debitAccountId).add(w.transfer.creditAccountId);
      f.staged.stage(w);
    }
    this.schedule();
    return f.waiters.done;
  }

  /**
   * Registers a function called at the start of a batch that was asked for with `want`, before the
   * batch's writes are taken: where sums aggregated in memory become ledger operations, so they
   * join this very batch. A preparer reports its own errors and must not throw. Returns a remover.
   */
  beforeBatch(prepare: () => void): () => void {
    this.preparers.add(prepare);
    return () => this.preparers.delete(prepare);
  }

  /** Asks for a batch as soon as possible, for preparers with work pending. */
  want(): void {
    this.wanted = true;
    this.schedule();
  }

  private schedule(): void {
    // While a batch is written, the next one fills up and starts the moment it is done.
    if (this.scheduled || this.writing || this.preparing) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  /** Resolves when nothing is queued or being written (for shutdown). */
  drain(): Promise<void> {
    if (!this.writing && !this.scheduled && this.filling_ === undefined) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Resolves once everything queued so far is durable, even while new writes keep coming. */
  barrier(): Promise<void> {
    if (!this.writing && this.filling_ === undefined) return Promise.resolve();
    return this.add([]);
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    if (this.wanted) {
      this.wanted = false;
      this.preparing = true;
      for (const prepare of this.preparers) {
        try {
          prepare();
        } catch {
          // documented as never throwing; a broken preparer must not stop the ledger's writes
        }
      }
      this.preparing = false;
    }
    const f = this.filling_;
    if (f === undefined) return this.settleIdle();
    // Taken: writes queued from now on (while this one is written) go into the next batch.
    this.filling_ = undefined;
    const accounts: Account[] = [];
    for (const w of f.accounts.values()) {
      const account = { ...w.account };
      accounts.push(account);
      f.staged.stage({
        type: 'account',
        account,
        ...(w.spend ? { spend: w.spend } : {}),
        ...(w.created === true ? { created: true } : {}),
        ...(w.frozenChanged === true ? { frozenChanged: true } : {}),
      });
    }
    const size = f.staged.size;
    this.writing = true;
    try {
      if (size > 0) await f.staged.write();
      else f.staged.discard();
      this.batches += 1;
      if (size > 0) this.committed({ accounts, moved: f.moved, writes: size });
      f.waiters.resolve();
    } catch (err) {
      this.failed = err;
      f.waiters.reject(err);
      const next = this.queued();
      if (next !== undefined) {
        next.waiters.reject(err);
        next.staged.discard();
      }
      this.filling_ = undefined;
      this.onFailure(err);
    } finally {
      this.writing = false;
    }
    if (this.queued() !== undefined || this.wanted) return this.flush();
    this.settleIdle();
  }

  /** The next batch (read again after an await: writes queued meanwhile created it). */
  private queued(): Filling | undefined {
    return this.filling_;
  }

  private committed(batch: CommittedBatch): void {
    try {
      this.onCommitted?.(batch);
    } catch {
      // documented as never throwing; a listener must not fail a batch that is already durable
    }
  }

  private settleIdle(): void {
    const idle = this.idle;
    this.idle = [];
    for (const r of idle) r();
  }
}
