import type { LedgerWrite } from './store.js';

/**
 * Collects writes from many operations and makes them durable together: while one batch is being
 * written (and fsync'd), the next one fills up. Several updates of the same account or transfer
 * in one batch collapse into the last one.
 */
export class GroupCommit {
  private keyed = new Map<string, LedgerWrite>();
  private appended: LedgerWrite[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
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

  /** Queues writes; resolves once they are durable. */
  add(writes: LedgerWrite[]): Promise<void> {
    // After a failed batch, later batches must not land without it: refuse everything.
    if (this.failed !== undefined) return Promise.reject(this.failed);
    // Copy now: the in-memory objects keep changing, and a batch must hold exactly the state
    // as of its last operation, never a later operation's effect without that operation's records.
    for (const w of writes) {
      if (w.type === 'account')
        this.keyed.set(
          `a:${w.account.id}`,
          w.spend
            ? { type: 'account', account: { ...w.account }, spend: w.spend }
            : { type: 'account', account: { ...w.account } },
        );
      else if (w.type === 'transfer')
        this.keyed.set(`t:${w.transfer.id}`, { type: 'transfer', transfer: { ...w.transfer } });
      else this.appended.push(w);
    }
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.schedule();
    return done;
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
    if (!this.writing && !this.scheduled && this.waiters.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Resolves once everything queued so far is durable, even while new writes keep coming. */
  barrier(): Promise<void> {
    if (!this.writing && this.waiters.length === 0) return Promise.resolve();
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
    if (this.waiters.length === 0) return this.settleIdle();
    const writes = [...this.keyed.values(), ...this.appended];
    const waiters = this.waiters;
    this.keyed = new Map();
    this.appended = [];
    this.waiters = [];
    this.writing = true;
    try {
      if (writes.length > 0) await this.write(writes);
      this.batches += 1;
      if (writes.length > 0) this.committed(writes);
      for (const w of waiters) w.resolve();
    } catch (err) {
      this.failed = err;
      for (const w of [...waiters, ...this.waiters]) w.reject(err);
      this.waiters = [];
      this.onFailure(err);
    } finally {
      this.writing = false;
    }
    if (this.waiters.length > 0 || this.wanted) return this.flush();
    this.settleIdle();
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
