/**
 * Running sums of an account's spending in fixed-size time buckets, so that a budget or rate
 * check costs O(buckets) instead of a scan of the account's transfers.
 *
 * Every spending debit (a transfer whose code is in SPEND_CODES, pending or posted) is added, at
 * its time, to one bucket of each level below; a void takes it out of the buckets it was counted
 * in, and a post at a lower amount takes out the difference. Each level keeps only the buckets
 * that can still overlap its longest window, so the size per account is fixed (at most
 * 61 + 61 + 169 + 31 buckets, only the non-empty ones stored).
 *
 * A window `[since, now]` is answered by the finest level that still reaches `since`, summing
 * every bucket of it that overlaps the window: the bucket holding `since` counts whole. So the
 * answer is never below the exact sliding-window sum, and above it by at most what was spent in
 * the part of that first bucket before `since`:
 *
 *   last minute (rate)  1 s buckets   → at most 1 s of extra history
 *   hour                1 min buckets → at most 1 min
 *   day, week           1 h buckets   → at most 1 h
 *   month (30 days)     1 day buckets → at most 1 day
 *
 * A window longer than the coarsest level (over 30 days) is answered with everything the
 * coarsest level holds, which may be less than the exact sum: no policy window is that long.
 */

/** Ledger transfer codes that count as spending for budgets and rates. */
export const SPEND_CODES: ReadonlySet<string> = new Set([
  'payment',
  'internal_payment',
  'transfer',
  'stream',
  'escrow',
]);

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Bucket width and how many buckets each level keeps (enough to overlap its longest window). */
export const SPEND_LEVELS: readonly { widthMs: number; buckets: number }[] = [
  { widthMs: SECOND, buckets: 61 },
  { widthMs: MINUTE, buckets: 61 },
  { widthMs: HOUR, buckets: 7 * 24 + 1 },
  { widthMs: DAY, buckets: 31 },
];

/** The longest window answered exactly-or-above. */
export const SPEND_HORIZON_MS = 30 * DAY;

interface Bucket {
  /** floor(time / width): which bucket of its level. */
  index: number;
  amount: bigint;
  count: number;
}

/** The buckets as stored with the account record: [level, index, amount, count] per bucket. */
export interface SpendRecord {
  /** The latest time counted: later debits are never counted earlier than this. */
  latest: number;
  buckets: [number, number, string, number][];
}

export class SpendBuckets {
  /** Per level, the non-empty buckets, oldest first. */
  private readonly levels: Bucket[][] = SPEND_LEVELS.map(() => []);
  private latest = 0;

  static from(record: SpendRecord | undefined): SpendBuckets {
    const s = new SpendBuckets();
    if (!record) return s;
    s.latest = record.latest;
    for (const [level, index, amount, count] of record.buckets)
      s.levels[level]?.push({ index, amount: BigInt(amount), count });
    for (const l of s.levels) l.sort((a, b) => a.index - b.index);
    return s;
  }

  toRecord(): SpendRecord {
    const buckets: SpendRecord['buckets'] = [];
    this.levels.forEach((l, level) => {
      for (const b of l) buckets.push([level, b.index, b.amount.toString(), b.count]);
    });
    return { latest: this.latest, buckets };
  }

  get empty(): boolean {
    return this.levels.every((l) => l.length === 0);
  }

  /**
   * Counts one spending debit of `amount` at `at` (moved up to the latest time already counted,
   * should the clock step back). Returns the time it was counted at: keep it with the transfer
   * to take it out again.
   */
  add(at: number, amount: bigint): number {
    const t = Math.max(at, this.latest);
    this.latest = t;
    for (let level = 0; level < SPEND_LEVELS.length; level++) {
      const { widthMs, buckets } = SPEND_LEVELS[level]!;
      const list = this.levels[level]!;
      const index = Math.floor(t / widthMs);
      const last = list[list.length - 1];
      if (last && last.index === index) {
        last.amount += amount;
        last.count += 1;
        continue;
      }
      let drop = 0;
      while (drop < list.length && list[drop]!.index <= index - buckets) drop++;
      if (drop > 0) list.splice(0, drop);
      list.push({ index, amount, count: 1 });
    }
    return t;
  }

  /**
   * Takes `amount` (and `count` debits) out of the buckets a debit counted at `at` went into;
   * buckets that have aged out of their level are gone already and need nothing.
   */
  remove(at: number, amount: bigint, count: number): void {
    SPEND_LEVELS.forEach(({ widthMs }, level) => {
      const list = this.levels[level]!;
      const index = Math.floor(at / widthMs);
      for (let i = list.length - 1; i >= 0; i--) {
        const b = list[i]!;
        if (b.index < index) return;
        if (b.index !== index) continue;
        b.amount -= amount;
        b.count -= count;
        if (b.amount <= 0n && b.count <= 0) list.splice(i, 1);
        return;
      }
    });
  }

  /** Spending since `since` (never less than the exact sum for windows up to 30 days). */
  spentSince(since: number, now: number): bigint {
    let sum = 0n;
    for (const b of this.window(since, now)) sum += b.amount;
    return sum;
  }

  /** Spending debits since `since` (never fewer than the exact count for windows up to 30 days). */
  countSince(since: number, now: number): number {
    let n = 0;
    for (const b of this.window(since, now)) n += b.count;
    return n;
  }

  /** The buckets of the finest level that reaches `since`, from the one holding `since` on. */
  private *window(since: number, now: number): Generator<Bucket> {
    let level = SPEND_LEVELS.length - 1;
    for (let l = 0; l < SPEND_LEVELS.length; l++) {
      const { widthMs, buckets } = SPEND_LEVELS[l]!;
      const newest = Math.floor(Math.max(now, this.latest) / widthMs);
      if (Math.floor(since / widthMs) > newest - buckets) {
        level = l;
        break;
      }
    }
    const first = Math.floor(since / SPEND_LEVELS[level]!.widthMs);
    const list = this.levels[level]!;
    for (let i = list.length - 1; i >= 0; i--) {
      const b = list[i]!;
      if (b.index < first) return;
      yield b;
    }
  }
}
