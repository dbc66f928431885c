import { createHash, randomBytes } from 'node:crypto';
import { afterEach } from 'vitest';
import { balanceOf } from '../../../src/ledger/types.js';
import { msat } from '../../../src/domain/msat.js';
import type { Invoice, TlvRecord } from '../../../src/lightning/types.js';
import type { Policy } from '../../../src/policy/types.js';
import type { Clock } from '../../../src/streams/clock.js';
import { StreamReceiver } from '../../../src/streams/receiver.js';
import { StreamsService, type StreamsOptions } from '../../../src/streams/service.js';
import type { StreamPayments } from '../../../src/streams/ports.js';
import type { StreamEvent, TickStats } from '../../../src/streams/types.js';
import { FakeLightning } from '../../support/fake-lightning.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

export const T0 = 1_700_000_000_000;

/** Lets group commits and promise chains run (they use setImmediate and microtasks). */
export async function settle(rounds = 12): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** A clock whose time only moves when told; timers fire in order as it passes them. */
export class ManualClock implements Clock {
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private seq = 0;

  constructor(public t = T0) {}

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer = { at: this.t + ms, fn, id: this.seq++ };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((x) => x !== timer);
    };
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing due timers one by one and letting I/O settle between them. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      if (due.at > this.t) this.t = due.at;
      due.fn();
      await settle();
    }
    this.t = target;
    await settle();
  }

  /** Forgets every timer (the process that set them died). */
  clearAll(): void {
    this.timers = [];
  }

  /** Jumps without firing anything (a blocked event loop, or a process that was down). */
  jump(ms: number): void {
    this.t += ms;
  }
}

export const silent = silentLog;

/** A log that remembers warnings and errors. */
export function recordingLog() {
  const warnings: { obj: object; msg?: string }[] = [];
  const errors: { obj: object; msg?: string }[] = [];
  return {
    warnings,
    errors,
    info: () => undefined,
    warn: (obj: object, msg?: string) => void warnings.push({ obj, msg }),
    error: (obj: object, msg?: string) => void errors.push({ obj, msg }),
  };
}

export const OPEN: Policy = { rules: [{ type: 'max_in_flight', max: 1000 }] };

export interface FixtureOptions {
  store?: MemoryLedgerStore;
  lightning?: FakeLightning;
  clock?: ManualClock;
  options?: StreamsOptions;
  /** Wraps the payments service (to inject failures). */
  payments?: (real: StreamPayments) => StreamPayments;
  onTick?: (stats: TickStats) => void;
}

/** Payments over an in-memory ledger and a fake node, with streams and a receiver on a manual clock. */
export async function streamsFixture(o: FixtureOptions = {}) {
  const clock = o.clock ?? new ManualClock();
  const f = await paymentsFixture(
    { now: () => clock.now() },
    o.store ?? new MemoryLedgerStore(),
    o.lightning ?? new FakeLightning(),
  );
  const events: { accountId: string; event: StreamEvent }[] = [];
  const publish = (accountId: string, event: StreamEvent): void => void events.push({ accountId, event });
  const log = recordingLog();
  const receiver = new StreamReceiver({
    ledger: f.ledger,
    nodeId: () => f.service.nodeId,
    publish,
    log,
    clock,
  });
  await receiver.start();
  const streams = new StreamsService({
    ledger: f.ledger,
    payments: o.payments ? o.payments(f.service) : f.service,
    publish,
    log,
    clock,
    inboxes: receiver,
    ...(o.onTick ? { onTick: o.onTick } : {}),
    // Full-size first chunks unless a test asks otherwise: chunk sizes stay exact in assertions.
    options: { firstChunkStagger: 0, ...o.options },
  });
  await streams.start();
  const close = async (): Promise<void> => {
    await streams.stop();
    receiver.stop();
    f.service.stop();
    await f.ledger.flush();
  };
  // `events` are the streams' own; `bus` is the payments' per-account event bus.
  return { ...f, bus: f.events, clock, streams, receiver, events, log, close };
}

export type StreamsFixture = Awaited<ReturnType<typeof streamsFixture>>;

/** Fixtures for one test file: each is closed after the test that opened it. */
export function closingFixtures(): (o?: FixtureOptions) => Promise<StreamsFixture> {
  const open: StreamsFixture[] = [];
  afterEach(async () => {
    for (const f of open.splice(0)) await f.close();
  });
  return async (o = {}) => {
    const f = await streamsFixture(o);
    open.push(f);
    return f;
  };
}

export const balance = (f: StreamsFixture, id: string): bigint => balanceOf(f.ledger.accountNow(id)!);

const sha = (hex: string): string => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');

/** A settled keysend invoice as LND reports it, carrying `records`. */
export function keysendInvoice(amountMsat: bigint, records: TlvRecord[], settledAt?: number): Invoice {
  const preimage = randomBytes(32).toString('hex');
  return {
    paymentHash: sha(preimage),
    preimage,
    description: '',
    amountMsat: msat(0),
    receivedMsat: msat(amountMsat),
    state: 'settled',
    isKeysend: true,
    createdAt: new Date(settledAt ?? T0),
    expiresAt: new Date((settledAt ?? T0) + 86_400_000),
    ...(settledAt !== undefined ? { settledAt: new Date(settledAt) } : {}),
    cltvDelta: 40,
    addIndex: 1,
    settleIndex: 1,
    htlcs: [{ amountMsat: msat(amountMsat), state: 'settled', records, expiryHeight: 0 }],
  };
}
