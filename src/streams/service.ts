import { randomUUID } from 'node:crypto';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { IndexedItems } from '../ledger/record-index.js';
import { Ticker, systemClock, type Clock } from './clock.js';
import { invalid, StreamError, StreamErrorCode } from './errors.js';
import { IDLE, LocalEngine, PAID } from './local-engine.js';
import {
  activeMsAt,
  bankActiveTime,
  changed,
  isLocal,
  newChunk,
  newModel,
  publicStream,
  type StreamModel,
} from './model.js';
import type { Logger, StreamPayments } from './ports.js';
import { RemoteSender } from './remote-sender.js';
import { isFatal, type StopSignal } from './stop-signal.js';
import type { CreateStreamInput, InboxDirectory, PublicStream, StreamPublisher, TickStats } from './types.js';
import { validateCreate } from './validate.js';
import { isFinalStream, loadOpenStreams, streamIndex, streamIndexRecords } from './store.js';

export interface StreamsOptions {
  /** The scheduler's period (default 1000 ms). */
  tickMs?: number;
  /** Time streams reserve this many seconds of rate per chunk (default 60). */
  chunkSeconds?: number;
  /**
   * Up to this fraction (0 to 0.9) is cut from each stream's first chunk, fixed by its id, so
   * that streams started together do not all roll over to their next chunk (policy check, audit,
   * reservation) on the same tick (default 0.5; 0 makes every chunk full size).
   */
  firstChunkStagger?: number;
  /** Remote streams stop after this many failed payments in a row (default 10). */
  maxConsecutiveFailures?: number;
  /** Final (stopped) streams kept in memory after use, most recent first (default 1000). */
  stoppedInMemory?: number;
}

export interface StreamsDeps {
  ledger: Ledger;
  payments: StreamPayments;
  publish: StreamPublisher;
  log: Logger;
  clock?: Clock;
  /** Recipient ids of this gateway: a stream to our own node and one of them stays internal. */
  inboxes?: InboxDirectory;
  /** Called after every tick (benchmarks, monitoring). */
  onTick?: (stats: TickStats) => void;
  options?: StreamsOptions;
}

/** What may still finish a stream with money owed: everything except the payer's refusal. */
const DRAINS = new Set(['requested', 'cap_reached']);

/**
 * Per-second streaming payments. Local streams (payee on this gateway) pay out of prepaid
 * chunks on one 1 s scheduler, every stream's move of a tick in one batched write; remote
 * streams keysend what accrued every interval. State changes are published to the parties.
 */
export class StreamsService {
  /** Open streams (active, paused, or stopped with work left) and a cache of recent final ones. */
  private streams: IndexedItems<StreamModel>;
  /** Active local streams: what the tick visits. */
  private readonly local = new Set<StreamModel>();
  /** Remote streams with work left: active, paused, draining, or with payments in flight. */
  private readonly remote = new Set<StreamModel>();
  private readonly ticker: Ticker;
  private readonly engine: LocalEngine;
  private readonly sender: RemoteSender;
  private readonly clock: Clock;
  private running = false;
  private failed = false;
  /** Features that drive streams and refuse their pausing (see `refusePause`). */
  private readonly pauseGuards = new Set<(s: PublicStream) => string | undefined>();

  constructor(private readonly deps: StreamsDeps) {
    const options = deps.options ?? {};
    this.clock = deps.clock ?? systemClock;
    this.streams = new IndexedItems(streamIndex, deps.ledger, options.stoppedInMemory ?? 1000);
    this.ticker = new Ticker(this.clock, options.tickMs ?? 1000, (t) => this.tick(t));
    const stagger = options.firstChunkStagger ?? 0.5;
    const chunkSeconds = options.chunkSeconds ?? 60;
    if (!(stagger >= 0 && stagger <= 0.9)) throw invalid('firstChunkStagger must be from 0 to 0.9');
    if (!Number.isSafeInteger(chunkSeconds) || chunkSeconds < 1)
      throw invalid('chunkSeconds must be a positive integer');
    this.engine = new LocalEngine(deps.ledger, deps.payments, chunkSeconds, Math.round(stagger * 1000));
    this.sender = new RemoteSender(
      deps.payments,
      {
        write: (s, t) => this.write(s, t),
        stop: (s, signal, t) => this.finish(s, signal, t),
        now: () => this.now(),
      },
      deps.log,
      options.maxConsecutiveFailures ?? 10,
    );
  }

  /**
   * Loads the open streams (final ones stay on disk, read on demand). Active ones resume from
   * now: the time the gateway was down is not billed. A local stream keeps its open chunk; a
   * remote one first re-sends an intent left unfinished.
   */
  async start(): Promise<void> {
    await this.load();
    this.startScheduler();
  }

  /** Loads the open streams and accepts requests (every instance), without scheduling them. */
  async load(): Promise<void> {
    if (this.running) return;
    this.streams = new IndexedItems(
      streamIndex,
      this.deps.ledger,
      this.deps.options?.stoppedInMemory ?? 1000,
    );
    this.local.clear();
    this.remote.clear();
    const loaded = await loadOpenStreams(this.deps.ledger, this.deps.log);
    // The scheduler reserves chunks for local streams in its synchronous tick: their payers' and
    // payees' accounts and the payers' policies are made resident first (and stay so while a
    // chunk is pending).
    const live = loaded.filter((s) => isLocal(s) && s.state !== 'stopped');
    await this.deps.payments.prepare(
      [...new Set(live.map((s) => s.payerAccountId))],
      [...new Set(live.flatMap((s) => (s.payeeAccountId ? [s.payeeAccountId] : [])))],
    );
    const now = this.now();
    for (const s of loaded) {
      this.streams.remember(s);
      if (s.state === 'active') s.activeSince = now;
      if (isLocal(s)) this.recoverChunk(s, now);
      else s.nextSendAt = now + s.intervalSeconds * 1000;
      if (isLocal(s) ? s.state === 'active' : s.state !== 'stopped' || hasWork(s)) this.track(s);
    }
    this.running = true;
  }

  /** The scheduler (the leader's duty): reserves and posts the local streams' chunks every tick. */
  startScheduler(): void {
    if (this.running && !this.failed) this.ticker.start();
  }

  /** Stops scheduling; the streams stay loaded and their time keeps accruing until the next tick. */
  stopScheduler(): void {
    this.ticker.stop();
  }

  /** Shuts the scheduler down, banking every active stream's time and settling local ones. */
  stop(): Promise<void>;
  /** Stops one stream for good: what is due is paid, the open chunk is posted (the rest returns). */
  stop(id: string, reason?: string): Promise<PublicStream>;
  async stop(id?: string, reason?: string): Promise<PublicStream | void> {
    if (id === undefined) return this.shutdown();
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 256))
      throw invalid('reason must be a string of at most 256 characters');
    const s = await this.mustGet(id);
    if (s.state === 'stopped')
      throw new StreamError(StreamErrorCode.STREAM_STOPPED, `stream ${id} is stopped`);
    const now = this.now();
    this.settleNow(s, now);
    if (!isStopped(s)) this.finish(s, { reason: 'requested', ...(reason ? { message: reason } : {}) }, now);
    return this.applied(s);
  }

  /**
   * Starts a stream. A retry with the same idempotency key gets the first stream; the same key
   * for another request is a 409.
   */
  async create(
    payerAccountId: string,
    input: CreateStreamInput,
    idempotencyKey?: string,
  ): Promise<PublicStream> {
    return this.deps.ledger.idempotent(
      { accountId: payerAccountId, key: idempotencyKey, operation: 'stream', request: input },
      (records) => this.createOnce(payerAccountId, input, records),
      (id) => this.get(id),
    );
  }

  private async createOnce(
    payerAccountId: string,
    input: CreateStreamInput,
    idem: (id: string) => SideRecords,
  ): Promise<PublicStream> {
    this.assertRunning();
    await this.deps.ledger.requireAccount(payerAccountId);
    // The checks and the first chunk's reservation below are one synchronous step.
    const payee: unknown = input.payee;
    const local =
      typeof payee !== 'object' || payee === null
        ? undefined
        : 'accountId' in payee && typeof payee.accountId === 'string'
          ? payee.accountId
          : 'recipientId' in payee && typeof payee.recipientId === 'string'
            ? this.deps.inboxes?.accountOf(payee.recipientId)
            : undefined;
    await this.deps.payments.prepare(local !== undefined ? [payerAccountId, local] : [payerAccountId]);
    const v = validateCreate(input, {
      payerAccountId,
      accountKind: (id) => this.deps.ledger.accountNow(id)?.kind,
      nodeId: this.deps.payments.nodeId,
      inboxAccount: (rid) => this.deps.inboxes?.accountOf(rid),
    });
    const now = this.now();
    const s = newModel({ ...v, id: randomUUID(), payerAccountId, createdAt: now }, { activeSince: now });
    // A local stream exists only once its first chunk is reserved: a refusal refuses the stream.
    if (isLocal(s)) this.engine.openChunk(s, 0n, true);
    else s.nextSendAt = now + s.intervalSeconds * 1000;
    this.streams.remember(s);
    this.track(s);
    this.write(s, now);
    this.writeIndex(s);
    // In the same tick as the stream's record, so in the same batch.
    const records = idem(s.id);
    const keyed = records.length > 0 ? this.deps.ledger.putRecords(records) : undefined;
    this.publishState(s, now);
    await keyed;
    return this.applied(s);
  }

  /**
   * A feature that drives streams (the energy market's metered ones) refuses pausing those it
   * drives: `guard` returns why, or undefined. Returns the function that removes the guard.
   */
  refusePause(guard: (s: PublicStream) => string | undefined): () => void {
    this.pauseGuards.add(guard);
    return () => this.pauseGuards.delete(guard);
  }

  async pause(id: string): Promise<PublicStream> {
    const s = await this.mustGet(id);
    this.assertState(s, 'active');
    const now = this.now();
    for (const guard of this.pauseGuards) {
      const why = guard(publicStream(s, now));
      if (why !== undefined) throw new StreamError(StreamErrorCode.STREAM_NOT_PAUSABLE, why);
    }
    this.settleNow(s, now);
    if (!isStopped(s)) {
      bankActiveTime(s, now);
      s.state = 'paused';
      changed(s, now);
      if (isLocal(s)) {
        this.local.delete(s);
        this.engine.closeChunk(s, 'stream paused');
      }
      this.write(s, now);
      this.publishState(s, now);
    }
    return this.applied(s);
  }

  /** Resumes a paused stream; a local one reserves a new chunk first (the policy is asked again). */
  async resume(id: string): Promise<PublicStream> {
    this.assertRunning();
    const paused = await this.mustGet(id);
    if (isLocal(paused)) await this.deps.payments.prepare([paused.payerAccountId], [paused.payeeAccountId!]);
    const s = await this.mustGet(id);
    this.assertState(s, 'paused');
    const now = this.now();
    if (isLocal(s)) this.engine.openChunk(s, 0n, true);
    s.state = 'active';
    s.activeSince = now;
    changed(s, now);
    this.track(s);
    this.write(s, now);
    this.publishState(s, now);
    return this.applied(s);
  }

  /** Adds metered usage (a positive integer of units); the next tick or interval pays for it. */
  async reportUsage(id: string, units: number): Promise<PublicStream> {
    const s = await this.mustGet(id);
    if (s.rate.kind !== 'metered')
      throw new StreamError(StreamErrorCode.STREAM_NOT_METERED, `stream ${id} is billed by time`);
    this.assertState(s, 'active');
    if (typeof units !== 'number' || !Number.isSafeInteger(units) || units < 1)
      throw invalid('units must be a positive integer');
    const now = this.now();
    s.units += BigInt(units);
    s.updatedAt = now;
    this.write(s, now);
    return this.applied(s);
  }

  /** The stream, open ones from memory, stopped ones from the cache or disk. */
  async get(id: string): Promise<PublicStream> {
    return publicStream(await this.mustGet(id), this.now());
  }

  /**
   * Streams the account pays or (locally) receives, newest first, a page at a time from the
   * index: `next` is the cursor of the following page (pass it as `before`).
   */
  async list(
    accountId: string,
    page: { limit?: number; before?: string } = {},
  ): Promise<{ streams: PublicStream[]; next?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const { entries, next } = await streamIndex.page(this.deps.ledger, accountId, limit, page.before);
    const now = this.now();
    const streams: PublicStream[] = [];
    for (const { id } of entries) {
      const s = await this.streams.peek(id);
      if (s) streams.push(publicStream(s, now));
    }
    return { streams, ...(next ? { next } : {}) };
  }

  /** What is in memory: open streams, and final ones in the cache of recent ones. */
  stats(): { open: number; stoppedInMemory: number } {
    const { open, closedInMemory } = this.streams.stats();
    return { open, stoppedInMemory: closedInMemory };
  }

  // ---- scheduler ------------------------------------------------------------------------

  private tick(scheduledAt: number): void {
    if (this.failed) return;
    const startedAt = this.clock.now();
    const hook = this.deps.onTick;
    const lags = hook ? new Float64Array(this.local.size) : undefined;
    let advanced = 0;
    let visited = 0;
    for (const s of this.local) {
      visited += 1;
      // A shared store: the payer's lease went to another instance (a payment of its own there):
      // this tick skips the stream, which is paid in full at the next one, once the lease is back.
      if (!this.payable(s)) continue;
      try {
        const out = this.engine.settle(s, activeMsAt(s, scheduledAt), scheduledAt);
        if (out === PAID) {
          if (lags) lags[advanced] = this.clock.now() - scheduledAt;
          advanced += 1;
        } else if (out !== IDLE) this.finish(s, out, scheduledAt);
      } catch (err) {
        if (this.fail(err)) return;
        this.deps.log.error({ err, streamId: s.id }, 'stream tick failed');
      }
    }
    try {
      this.sender.tick(scheduledAt, this.remote);
    } catch (err) {
      if (this.fail(err)) return;
      this.deps.log.error({ err }, 'remote stream tick failed');
    }
    if (hook && lags) {
      const durable = this.deps.ledger.flush();
      durable.catch(() => undefined); // a storage failure is the ledger's 'fatal' event
      hook({
        scheduledAt,
        startedAt,
        finishedAt: this.clock.now(),
        streams: visited,
        advanced,
        lagsMs: lags.subarray(0, advanced),
        durable,
      });
    }
  }

  /** Payers whose lease and accounts are being taken back (`payable`). */
  private readonly regaining = new Set<string>();

  /**
   * Whether the tick may move the stream's money now (always, but on a shared store when the
   * payer's lease was handed over meanwhile); if not, takes the lease and accounts back in the
   * background for the next tick.
   */
  private payable(s: StreamModel): boolean {
    const payer = s.payerAccountId;
    const others = s.payeeAccountId ? [s.payeeAccountId] : [];
    if (this.deps.payments.spendReady(payer, others)) return true;
    if (!this.regaining.has(payer)) {
      this.regaining.add(payer);
      this.deps.payments
        .prepare([payer], others)
        .catch((err: unknown) =>
          this.deps.log.warn({ err, accountId: payer }, 'retaking a stream payer failed'),
        )
        .finally(() => this.regaining.delete(payer));
    }
    return false;
  }

  /** Pays a local stream up to `now`; stops it if that fails or reaches a cap. */
  private settleNow(s: StreamModel, now: number): void {
    if (!isLocal(s) || s.state !== 'active') return;
    s.lastSecs = -1;
    const out = this.engine.settle(s, activeMsAt(s, now), now);
    if (out !== IDLE && out !== PAID) this.finish(s, out, now);
  }

  /** Stops a stream: banks its time, posts its chunk, records and publishes the final state. */
  private finish(s: StreamModel, signal: StopSignal, t: number): void {
    bankActiveTime(s, t);
    s.state = 'stopped';
    s.stopReason = signal.reason;
    s.stopCode = signal.code;
    s.stopMessage = signal.message;
    s.stoppedAt = t;
    changed(s, t);
    if (isLocal(s)) {
      this.local.delete(s);
      this.engine.closeChunk(s, `stream stopped: ${signal.reason}`);
    } else {
      s.drain = DRAINS.has(signal.reason);
    }
    this.write(s, t);
    this.publishState(s, t);
  }

  private async shutdown(): Promise<void> {
    if (!this.running) return;
    this.ticker.stop();
    const now = this.now();
    for (const s of [...this.local, ...this.remote]) {
      if (s.state !== 'active') continue;
      try {
        this.settleNow(s, now);
        if (!isStopped(s)) this.write(s, now);
      } catch (err) {
        if (this.fail(err)) break;
        this.deps.log.error({ err, streamId: s.id }, 'could not bank a stream at shutdown');
      }
    }
    this.running = false;
    this.sender.close();
    await this.deps.ledger.flush().catch(() => undefined);
  }

  // ---- internals ------------------------------------------------------------------------

  private recoverChunk(s: StreamModel, now: number): void {
    const c = s.chunk;
    if (c === undefined) return;
    const t = this.deps.ledger.getTransferSync(c.id);
    if (t?.state !== 'pending') {
      s.chunk = undefined;
      return;
    }
    // The record commits with every advance, so the ledger's progress of the chunk is the record's.
    s.chunk = newChunk(c.id, t.amount, t.advanced ?? 0n);
    if (s.state !== 'active') {
      this.engine.closeChunk(s, 'stream not active');
      this.write(s, now);
    }
  }

  private track(s: StreamModel): void {
    if (isLocal(s)) {
      if (s.state === 'active') this.local.add(s);
    } else this.remote.add(s);
  }

  private write(s: StreamModel, t: number): void {
    if (this.failed) return;
    try {
      this.engine.write(s, activeMsAt(s, t));
      // The stream became final: its open mark goes in the same batch, and it leaves memory's open set.
      if (isFinalStream(s) && this.streams.openItem(s.id) === s) {
        this.writeIndex(s);
        this.streams.remember(s);
      }
    } catch (err) {
      if (!this.fail(err)) this.deps.log.error({ err, streamId: s.id }, 'could not write a stream record');
    }
  }

  /** The stream's index entries (open mark, by account, by time), in the current batch. */
  private writeIndex(s: StreamModel): void {
    if (this.failed) return;
    this.deps.ledger.putRecords(streamIndexRecords(s)).catch(() => undefined); // failures: ledger's 'fatal' event
  }

  /** Resolves with the stream's view once everything applied for it is durable. */
  private async applied(s: StreamModel): Promise<PublicStream> {
    await this.engine.lastDurable;
    return publicStream(s, this.now());
  }

  private publishState(s: StreamModel, t: number): void {
    const event = { type: 'stream' as const, stream: publicStream(s, t) };
    this.deps.publish(s.payerAccountId, event);
    if (s.payeeAccountId !== undefined) this.deps.publish(s.payeeAccountId, event);
  }

  /** On a storage failure the ledger accepts nothing more: stop ticking (the process restarts). */
  private fail(err: unknown): boolean {
    if (!isFatal(err)) return false;
    this.failed = true;
    this.ticker.stop();
    this.deps.log.error({ err }, 'ledger failed; streams stopped ticking');
    return true;
  }

  private async mustGet(id: string): Promise<StreamModel> {
    const s = typeof id === 'string' ? await this.streams.find(id) : undefined;
    if (!s) throw new StreamError(StreamErrorCode.STREAM_NOT_FOUND, `no stream ${String(id)}`);
    return s;
  }

  private assertState(s: StreamModel, state: 'active' | 'paused'): void {
    if (s.state === state) return;
    if (s.state === 'stopped')
      throw new StreamError(StreamErrorCode.STREAM_STOPPED, `stream ${s.id} is stopped`);
    throw new StreamError(
      state === 'active' ? StreamErrorCode.STREAM_NOT_ACTIVE : StreamErrorCode.STREAM_NOT_PAUSED,
      `stream ${s.id} is ${s.state}`,
    );
  }

  private assertRunning(): void {
    if (!this.running || this.failed)
      throw new StreamError(StreamErrorCode.STREAMS_NOT_RUNNING, 'streams are not running');
  }

  private now(): number {
    return Math.floor(this.clock.now());
  }
}

/** Re-reads the state after calls that may have stopped the stream. */
function isStopped(s: StreamModel): boolean {
  return s.state === 'stopped';
}

function hasWork(s: StreamModel): boolean {
  return s.drain || s.intent !== undefined || s.inFlight.length > 0;
}
