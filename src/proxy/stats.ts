import { Type } from '@sinclair/typebox';
import { msat, type Msat } from '../domain/msat.js';
import type { RecordStore } from '../ledger/store.js';
import { MsatField, recordCodec } from '../records/codec.js';

const PREFIX = 'proxystat!';
const HOUR = 3600_000;
const DAY = 24 * HOUR;

export type StatsPeriod = 'hour' | 'day';
const PERIOD_MS: Record<StatsPeriod, number> = { hour: HOUR, day: DAY };
const PERIOD_TAG: Record<StatsPeriod, string> = { hour: 'h', day: 'd' };

/** How long buckets are kept: hourly ones 31 days, daily ones two years. */
export const STATS_RETENTION_MS: Record<StatsPeriod, number> = { hour: 31 * DAY, day: 731 * DAY };

const BucketRecord = Type.Object(
  {
    requests: Type.Integer({ minimum: 0 }),
    paidRequests: Type.Integer({ minimum: 0 }),
    challenges: Type.Integer({ minimum: 0 }),
    revenueMsat: MsatField,
  },
  { additionalProperties: false },
);
const bucketCodec = recordCodec('proxy statistics bucket', BucketRecord);

interface Counts {
  requests: number;
  paidRequests: number;
  challenges: number;
  revenueMsat: Msat;
}

export interface StatsBucket extends Counts {
  service: string;
  period: StatsPeriod;
  /** Start of the period, unix milliseconds (UTC hours and days). */
  start: number;
}

const zero = (): Counts => ({ requests: 0, paidRequests: 0, challenges: 0, revenueMsat: msat(0n) });
const add = (a: Counts, b: Counts): Counts => ({
  requests: a.requests + b.requests,
  paidRequests: a.paidRequests + b.paidRequests,
  challenges: a.challenges + b.challenges,
  revenueMsat: msat(a.revenueMsat + b.revenueMsat),
});

const keyOf = (service: string, period: StatsPeriod, start: number): string =>
  `${PREFIX}${service}!${PERIOD_TAG[period]}!${String(start).padStart(15, '0')}`;

/**
 * Requests, challenges and revenue of each paid service, per hour and per day: bounded
 * counters on disk (`proxystat!<service>!<h|d>!<start>`), never a scan of history. The hot path
 * only adds to counters in memory (one per service and period touched since the last flush);
 * a flush every few seconds adds them to their records on disk. Hourly buckets are kept 31 days,
 * daily ones two years (a prune each hour), so the disk holds at most ~1,500 records a service.
 */
export class ServiceStats {
  private pending = new Map<string, Counts>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private lastPrune = 0;
  private readonly now: () => number;
  private readonly flushEveryMs: number;

  constructor(
    private readonly store: RecordStore,
    options: { now?: () => number; flushEveryMs?: number; onError?: (err: unknown) => void } = {},
  ) {
    this.now = options.now ?? Date.now;
    this.flushEveryMs = options.flushEveryMs ?? 5_000;
    this.onError = options.onError ?? (() => undefined);
  }

  private readonly onError: (err: unknown) => void;

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush().catch(this.onError), this.flushEveryMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is counted. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** A request to the service was answered (paid: it was charged to a credential). */
  answered(service: string, paid: boolean): void {
    this.count(service, 1, paid ? 1 : 0, 0, 0n);
  }

  /** A 402 challenge (a new invoice) went out for the service. */
  challenged(service: string): void {
    this.count(service, 0, 0, 1, 0n);
  }

  /** A request's final charge, once durable. */
  charged(service: string, amount: Msat): void {
    if (amount > 0n) this.count(service, 0, 0, 0, amount);
  }

  /** The bucket keys of the current hour and day, per service (rebuilt when the hour turns). */
  private keys = new Map<string, { hour: number; hourKey: string; dayKey: string }>();

  /** Adds to the pending counters in place (two per request, on the hot path: no allocation). */
  private count(
    service: string,
    requests: number,
    paidRequests: number,
    challenges: number,
    revenue: bigint,
  ): void {
    const at = this.now();
    const hour = at - (at % HOUR);
    let k = this.keys.get(service);
    if (k?.hour !== hour) {
      // Bounded: one entry a service; a catalog that churns names starts over.
      if (this.keys.size >= 10_000) this.keys.clear();
      k = { hour, hourKey: keyOf(service, 'hour', hour), dayKey: keyOf(service, 'day', at - (at % DAY)) };
      this.keys.set(service, k);
    }
    for (const key of [k.hourKey, k.dayKey]) {
      let c = this.pending.get(key);
      if (!c) this.pending.set(key, (c = zero()));
      c.requests += requests;
      c.paidRequests += paidRequests;
      c.challenges += challenges;
      if (revenue > 0n) c.revenueMsat = msat(c.revenueMsat + revenue);
    }
  }

  /** Adds the counters to their records on disk (one batch); on failure they stay pending. */
  flush(): Promise<void> {
    const run = this.flushing.then(async () => {
      const taken = this.pending;
      if (taken.size === 0) return this.maybePrune();
      this.pending = new Map();
      try {
        const writes = await Promise.all(
          [...taken].map(async ([key, delta]) => {
            const raw = await this.store.getRecord(key);
            const sum = add(raw === undefined ? zero() : bucketCodec.decode(raw), delta);
            return { key, value: bucketCodec.encode(sum) };
          }),
        );
        await this.store.putRecords(writes);
      } catch (err) {
        for (const [key, delta] of taken) this.pending.set(key, add(this.pending.get(key) ?? zero(), delta));
        throw err;
      }
      await this.maybePrune();
    });
    this.flushing = run.catch(() => undefined);
    return run;
  }

  private async maybePrune(): Promise<void> {
    const now = this.now();
    if (now - this.lastPrune < HOUR) return;
    this.lastPrune = now;
    await this.prune();
  }

  /** Deletes the buckets past their retention; returns how many. */
  async prune(): Promise<number> {
    const now = this.now();
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listRecords(PREFIX, { limit: 1000, ...(after ? { after } : {}) });
      const old = page.filter((r) => {
        const m = /!([hd])!(\d+)$/.exec(r.key);
        if (!m) return false;
        const period: StatsPeriod = m[1] === 'h' ? 'hour' : 'day';
        return Number(m[2]) + PERIOD_MS[period] <= now - STATS_RETENTION_MS[period];
      });
      if (old.length) await this.store.putRecords(old.map((r) => ({ key: r.key, value: null })));
      deleted += old.length;
      if (page.length < 1000) return deleted;
      after = page[page.length - 1]!.key;
    }
  }

  /**
   * A service's buckets of one period starting in [from, to), oldest first, at most `limit`
   * (what is counted but not yet flushed included). Periods without requests have no bucket.
   */
  async buckets(
    service: string,
    period: StatsPeriod,
    range: { from: number; to: number; limit: number },
  ): Promise<StatsBucket[]> {
    const prefix = `${PREFIX}${service}!${PERIOD_TAG[period]}!`;
    const first = range.from - (range.from % PERIOD_MS[period]);
    const records = await this.store.listRecords(prefix, {
      limit: range.limit,
      // Keys sort by start (fixed width): begin just before the first period asked for.
      after: keyOf(service, period, first - 1),
    });
    const out = new Map<number, Counts>();
    for (const r of records) {
      const start = Number(r.key.slice(prefix.length));
      if (start >= range.to) break;
      out.set(start, bucketCodec.decode(r.value));
    }
    for (const [key, delta] of this.pending) {
      if (!key.startsWith(prefix)) continue;
      const start = Number(key.slice(prefix.length));
      if (start < first || start >= range.to) continue;
      out.set(start, add(out.get(start) ?? zero(), delta));
    }
    return [...out]
      .sort(([a], [b]) => a - b)
      .slice(0, range.limit)
      .map(([start, c]) => ({ service, period, start, ...c }));
  }
}
