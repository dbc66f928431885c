import type { Caps, Rate } from './types.js';

// Exact accrual in msat: integer arithmetic on the whole active time, never on increments,
// so sub-msat remainders carry forward by construction and totals cannot drift.

/** Whole active seconds, given banked active milliseconds and the current segment's start. */
export function activeSecondsAt(activeMsBefore: number, activeSince: number | undefined, t: number): number {
  const ms = activeMsBefore + (activeSince === undefined || t < activeSince ? 0 : t - activeSince);
  return Math.floor(ms / 1000);
}

/** What a stream owes in total after `activeSeconds` of activity and `units` reported, capped. */
export function accruedMsat(rate: Rate, caps: Caps, activeSeconds: number, units: bigint): bigint {
  let accrued: bigint;
  if (rate.kind === 'time') {
    const max = caps.maxDurationSeconds;
    const secs = max !== undefined && activeSeconds > max ? max : activeSeconds;
    accrued = (rate.rateMsat * BigInt(secs)) / BigInt(rate.perSeconds);
  } else {
    accrued = rate.priceMsatPerUnit * units;
  }
  const total = caps.maxTotalMsat;
  return total !== undefined && accrued > total ? total : accrued;
}

/** The most a stream can ever accrue under its caps; undefined when unbounded. */
export function ceilingMsat(rate: Rate, caps: Caps): bigint | undefined {
  let ceiling: bigint | undefined = caps.maxTotalMsat;
  if (rate.kind === 'time' && caps.maxDurationSeconds !== undefined) {
    const byDuration = (rate.rateMsat * BigInt(caps.maxDurationSeconds)) / BigInt(rate.perSeconds);
    if (ceiling === undefined || byDuration < ceiling) ceiling = byDuration;
  }
  return ceiling;
}

/**
 * True once a cap stops the stream: its duration has passed or its total has accrued.
 * `ceiling` is ceilingMsat(rate, caps), which callers on a hot path compute once.
 */
export function capReached(
  rate: Rate,
  caps: Caps,
  activeSeconds: number,
  accrued: bigint,
  ceiling = ceilingMsat(rate, caps),
): boolean {
  if (caps.maxDurationSeconds !== undefined && activeSeconds >= caps.maxDurationSeconds) return true;
  return ceiling !== undefined && accrued >= ceiling;
}

/**
 * The size of the next prepaid chunk of a local stream: `chunkSeconds` of rate (time) or the
 * prefund (metered), at least what is due now, at most what the caps still allow.
 */
export function chunkMsat(
  rate: Rate,
  caps: Caps,
  paid: bigint,
  due: bigint,
  chunkSeconds: number,
  prefundMsat: bigint | undefined,
): bigint {
  let size: bigint;
  if (rate.kind === 'time') {
    const per = BigInt(rate.perSeconds);
    size = (rate.rateMsat * BigInt(chunkSeconds) + per - 1n) / per;
  } else {
    size = prefundMsat ?? rate.priceMsatPerUnit * 1000n;
  }
  if (size < due) size = due;
  if (size < 1n) size = 1n;
  const ceiling = ceilingMsat(rate, caps);
  if (ceiling !== undefined && size > ceiling - paid) size = ceiling - paid;
  return size > 0n ? size : 0n;
}
