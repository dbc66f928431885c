import type { LedgerWrite } from './store.js';

/**
 * Collects writes from many operations and makes them durable together: while one batch is being
 * written (and fsync'd), the next one fills up. Several updates of the same account or transfer
 * in one batch collapse into the last one.
 */
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

export class GroupCommit {
  /** The latest write of each account and transfer queued for the next batch (by id). */
  private accounts = new Map<string, LedgerWrite & { type: 'account' }>();
  private transfers = new Map<string, LedgerWrite & { type: 'transfer' }>();
  private appended: LedgerWrite[] = [];
  /**
   * The next batch's promise, created by its first `add`: every add of the batch gets the same
   * one (they all resolve or fail together), so queuing a write allocates no promise of its own.
   */
  private waiters: BatchWaiters | undefined;
  private scheduled = false;
  private writing = false;
  private idle: (() => void)[] = [];
  private readonly preparers = new Set<() => void>();
  /** A preparer has work pending: the next batch must run even without writes of its own. */
  private wanted = false;
  private preparing = false;
  batches = 0;

  constructor(
    private readonly write: (writes: LedgerWrite[]) => Promise<void>,
    private readonly onFailure: (err: unknown) => void,
    /** Told what each batch wrote, once it is durable (before its waiters resume). Must not throw. */
    private readonly onCommitted?: (writes: LedgerWrite[]) => void,
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
   * write queued into it).
   */
  add(writes: LedgerWrite[]): Promise<void> {
    // After a failed batch, later batches must not land without it: refuse everything.
    if (this.failed !== undefined) return Promise.reject(this.failed);
    // Accounts and transfers are copied when the batch is taken (see `flush`), not here: the
    // in-memory objects keep changing, and a batch holds exactly their state as of its last
    // operation — every change is applied and queued in one synchronous step, so that state is
    // the one at the moment the batch is taken. One copy per item and batch, not per write.
    for (const w of writes) {
      if (w.type === 'account') {
        // The latest state wins; the index flags of an earlier write of the batch stay with it.
        const prev = this.accounts.get(w.account.id);
        this.accounts.set(
          w.account.id,
          prev !== undefined && (prev.created === true || prev.frozenChanged === true)
            ? {
                ...w,
                created: w.created === true || prev.created === true,
                frozenChanged: w.frozenChanged === true || prev.frozenChanged === true,
              }
            : w,
        );
      } else if (w.type === 'transfer') this.transfers.set(w.transfer.id, w);
      else this.appended.push(w);
    }
    const waiters = (this.waiters ??= batchWaiters());
    this.schedule();
    return waiters.done;
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
    if (!this.writing && !this.scheduled && this.waiters === undefined) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Resolves once everything queued so far is durable, even while new writes keep coming. */
  barrier(): Promise<void> {
    if (!this.writing && this.waiters === undefined) return Promise.resolve();
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
    const waiters = this.waiters;
    if (waiters === undefined) return this.settleIdle();
    const writes: LedgerWrite[] = [];
    for (const w of this.accounts.values())
      writes.push({
        type: 'account',
        account: { ...w.account },
        ...(w.spend ? { spend: w.spend } : {}),
        ...(w.created === true ? { created: true } : {}),
        ...(w.frozenChanged === true ? { frozenChanged: true } : {}),
      });
    for (const w of this.transfers.values()) writes.push({ type: 'transfer', transfer: { ...w.transfer } });
    for (const w of this.appended) writes.push(w);
    this.accounts = new Map();
    this.transfers = new Map();
    this.appended = [];
    this.waiters = undefined;
    this.writing = true;
    try {
      if (writes.length > 0) await this.write(writes);
      this.batches += 1;
      if (writes.length > 0) this.committed(writes);
      waiters.resolve();
    } catch (err) {
      this.failed = err;
      waiters.reject(err);
      this.queued()?.reject(err);
      this.waiters = undefined;
      this.onFailure(err);
    } finally {
      this.writing = false;
    }
    if (this.queued() !== undefined || this.wanted) return this.flush();
    this.settleIdle();
  }

  /** The next batch's waiters (read again after an await: writes queued meanwhile created them). */
  private queued(): BatchWaiters | undefined {
    return this.waiters;
  }

  private committed(writes: LedgerWrite[]): void {
    try {
      this.onCommitted?.(writes);
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
