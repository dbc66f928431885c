import { KeyedQueue } from '../domain/keyed-queue.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import type { Logger } from '../domain/logger.js';
import { signEvent, type EventEnvelope } from './envelope.js';
import type { DeviceRegistry } from './registry.js';

/** Where signed events go: MQTT today; anything that can carry an envelope to a device. */
export interface EventSink {
  pushEvent(event: EventEnvelope): Promise<void>;
}

/** The outbox: every event until it expires, `devevt!<device id>!<n, 12 digits>`. */
const OUTBOX = 'devevt!';
const outboxKey = (e: EventEnvelope): string => `${OUTBOX}${e.d}!${String(e.n).padStart(12, '0')}`;
/** The expiry an event's body carries (read once, when the outbox is loaded). */
const expiryOf = (e: EventEnvelope): number => (JSON.parse(e.b) as { exp: number }).exp;

/**
 * Signs events for devices (sequence numbered per device) and hands them to the transports.
 * Each event is written to a durable outbox with its device's new sequence number before any
 * transport sees it, and kept there until it expires: after a restart (or a crash) a device that
 * comes back gets the events it may have missed again (`replay`); devices drop any `n` they saw.
 *
 * Devices drop every `n` not above the last one they processed, so a device's events must leave
 * in `n` order: pushes and replays of one device run one at a time, and a push that finds a
 * replay of its device pending leaves the sending to that replay.
 */
export class DeviceEvents {
  private readonly sinks: EventSink[] = [];
  private readonly listeners: ((e: EventEnvelope) => void)[] = [];
  /** Unexpired events per device with their expiry (s), oldest first (mirrors the outbox records). */
  private readonly outbox = new Map<string, { event: EventEnvelope; exp: number }[]>();
  /** One device's writes and sends at a time, in call order. */
  private readonly queue = new KeyedQueue();
  /** With shared event numbers: one device's numbering and write at a time, in call order. */
  private readonly numbering = new KeyedQueue();
  /** Replays asked for and not yet sent, per device. */
  private readonly replaysPending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: DeviceRegistry,
    private readonly ledger: Ledger,
    private readonly gatewayKeyHex: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** How long one transport may take to accept an event before the next one goes. */
    private readonly sendTimeoutMs = 10_000,
  ) {}

  /** Loads the unexpired outbox, deletes what expired, and prunes it from then on. */
  async start(pruneEveryMs = 30_000): Promise<void> {
    await this.load();
    this.startPruning(pruneEveryMs);
  }

  /**
   * Loads the unexpired outbox and deletes what expired. Called again, it adds what other
   * instances wrote since (with a shared store, before the leader replays or prunes).
   */
  async load(): Promise<void> {
    const expired: string[] = [];
    const nowSec = Math.floor(this.now() / 1000);
    for (const r of await this.ledger.listRecords(OUTBOX)) {
      const e = JSON.parse(r.value) as EventEnvelope;
      const exp = expiryOf(e);
      if (exp <= nowSec) expired.push(r.key);
      else this.keep(e, exp);
    }
    if (expired.length) await this.ledger.putRecords(expired.map((key) => ({ key, value: null })));
  }

  /** Prunes expired events from the outbox every `pruneEveryMs` (the leader's duty). */
  startPruning(pruneEveryMs = 30_000): void {
    this.stop();
    this.timer = setInterval(() => void this.prune(), pruneEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  addSink(sink: EventSink): void {
    this.sinks.push(sink);
  }

  /** In-process observers (tests, the HTTP long-poll of later versions). */
  onEvent(listener: (e: EventEnvelope) => void): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  /**
   * Signs, writes to the outbox, and sends; `ttlSeconds` is how long the event is worth acting on.
   * `records` (the state change the event announces) are written in the same batch as the event;
   * given as a function, they are read when the batch is made (the state of that moment).
   */
  push(
    deviceId: string,
    type: string,
    data: Record<string, unknown>,
    ttlSeconds = 300,
    records: SideRecords | (() => SideRecords) = [],
  ): Promise<EventEnvelope> {
    const t = Math.floor(this.now() / 1000);
    const exp = t + ttlSeconds;
    const body = JSON.stringify({ ...data, exp });
    const stateOf = typeof records === 'function' ? records : () => records;
    if (this.registry.sharedEventSeq) return this.pushShared(deviceId, type, t, exp, body, stateOf);
    // Numbered, written and queued now: the records are the state of this moment (never an older
    // copy written later), and the queue's order is the numbers' order. Only the sending waits.
    let durable: Promise<EventEnvelope>;
    try {
      const { n, record } = this.registry.takeEventSeq(deviceId);
      const event = signEvent({ d: deviceId, n, t, e: type, b: body }, this.gatewayKeyHex);
      durable = this.ledger
        .putRecords([...stateOf(), record, { key: outboxKey(event), value: JSON.stringify(event) }])
        .then(() => event);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.sendInTurn(deviceId, durable, exp);
  }

  /**
   * `push` when several instances share the device's event numbers: the number comes from the
   * shared store, so the numbering and the write wait for it, one push of a device at a time in
   * call order (this instance's sends keep the numbers' order).
   */
  private pushShared(
    deviceId: string,
    type: string,
    t: number,
    exp: number,
    body: string,
    stateOf: () => SideRecords,
  ): Promise<EventEnvelope> {
    const durable = this.numbering.run(deviceId, async () => {
      const { n, record } = await this.registry.claimEventSeq(deviceId);
      const event = signEvent({ d: deviceId, n, t, e: type, b: body }, this.gatewayKeyHex);
      await this.ledger.putRecords([
        ...stateOf(),
        record,
        { key: outboxKey(event), value: JSON.stringify(event) },
      ]);
      return event;
    });
    return this.sendInTurn(deviceId, durable, exp);
  }

  /** Sends a pushed event once it is durable, in the device's queue (after its earlier pushes). */
  private sendInTurn(deviceId: string, durable: Promise<EventEnvelope>, exp: number): Promise<EventEnvelope> {
    durable.catch(() => undefined); // awaited below; this only keeps a failure from going unhandled
    return this.queue.run(deviceId, async () => {
      const event = await durable;
      // Only a durable event may be sent, by this push or by a replay.
      this.keep(event, exp);
      for (const l of this.listeners) {
        try {
          l(event);
        } catch (err) {
          this.log.warn({ err }, 'a device event listener failed');
        }
      }
      if (!this.replaysPending.get(deviceId)) await this.send([event]);
      return event;
    });
  }

  /** Sends a device's unexpired events again, in order (it came back after a restart). */
  replay(deviceId: string): Promise<number> {
    this.replaysPending.set(deviceId, (this.replaysPending.get(deviceId) ?? 0) + 1);
    return this.queue.run(deviceId, async () => {
      try {
        const nowSec = Math.floor(this.now() / 1000);
        const pending = (this.outbox.get(deviceId) ?? []).filter((k) => k.exp > nowSec).map((k) => k.event);
        await this.send(pending);
        return pending.length;
      } finally {
        const left = (this.replaysPending.get(deviceId) ?? 1) - 1;
        if (left > 0) this.replaysPending.set(deviceId, left);
        else this.replaysPending.delete(deviceId);
      }
    });
  }

  /**
   * Start-up recovery, once a transport is attached: the events devices may have missed while
   * this process was not running (the outbox keeps them until they expire) go out again. A broker
   * that lost its sessions with the last process (the embedded one) passes `firstSubscriptions`:
   * each device gets them when it first subscribes again, and from then on the broker's session
   * holds what it misses. A broker that keeps sessions (external) gets them all at once.
   */
  recover(firstSubscriptions?: (onSubscribed: (deviceId: string) => void) => void): void {
    const replay = (deviceId?: string): void =>
      void (deviceId === undefined ? this.replayAll() : this.replay(deviceId)).catch((err: unknown) =>
        this.log.warn({ err }, 'replaying device events failed'),
      );
    if (!firstSubscriptions) return replay();
    const seen = new Set<string>();
    firstSubscriptions((deviceId) => {
      if (seen.has(deviceId)) return;
      seen.add(deviceId);
      replay(deviceId);
    });
  }

  /** Sends every unexpired event again (to a broker that keeps sessions of its own). */
  async replayAll(): Promise<number> {
    // Every device is marked as replaying at once, so no push of any of them overtakes its replay.
    const sent = await Promise.all([...this.outbox.keys()].map((d) => this.replay(d)));
    return sent.reduce((a, b) => a + b, 0);
  }

  /**
   * Hands events to the transports in order. A transport that does not answer within
   * `sendTimeoutMs` (a broker that does not acknowledge) does not hold the device's later events
   * up for good: the event stays in the outbox, and MQTT clients keep their own queue in order.
   */
  private async send(events: EventEnvelope[]): Promise<void> {
    for (const event of events)
      await Promise.all(
        this.sinks.map((s) => {
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<void>((resolve) => {
            timer = setTimeout(() => {
              this.log.warn(
                { deviceId: event.d, type: event.e },
                'a transport is slow to take a device event',
              );
              resolve();
            }, this.sendTimeoutMs);
            timer.unref();
          });
          const sent = s
            .pushEvent(event)
            .catch((err: unknown) =>
              this.log.warn({ err, deviceId: event.d, type: event.e }, 'could not push a device event'),
            );
          return Promise.race([sent, late]).finally(() => clearTimeout(timer));
        }),
      );
  }

  /**
   * Keeps an event in the device's list: once, in number order (a reload merges what another
   * instance wrote), dropping what expired (memory stays bounded where this instance never prunes).
   */
  private keep(event: EventEnvelope, exp: number): void {
    const nowSec = Math.floor(this.now() / 1000);
    const list = (this.outbox.get(event.d) ?? []).filter((k) => k.exp > nowSec);
    if (!list.some((k) => k.event.n === event.n)) {
      list.push({ event, exp });
      list.sort((a, b) => a.event.n - b.event.n);
    }
    this.outbox.set(event.d, list);
  }

  private async prune(): Promise<void> {
    // Several instances write the outbox: what the others wrote is read first, then pruned too.
    if (this.registry.sharedEventSeq)
      await this.load().catch((err: unknown) =>
        this.log.warn({ err }, 'reading the device event outbox failed'),
      );
    const nowSec = Math.floor(this.now() / 1000);
    const gone: string[] = [];
    for (const [deviceId, list] of this.outbox) {
      const live = list.filter((k) => {
        if (k.exp > nowSec) return true;
        gone.push(outboxKey(k.event));
        return false;
      });
      if (live.length) this.outbox.set(deviceId, live);
      else this.outbox.delete(deviceId);
    }
    if (gone.length)
      await this.ledger
        .putRecords(gone.map((key) => ({ key, value: null })))
        .catch((err: unknown) => this.log.warn({ err }, 'pruning the device event outbox failed'));
  }
}
