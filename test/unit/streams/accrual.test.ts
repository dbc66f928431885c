import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import {
  accruedMsat,
  activeSecondsAt,
  capReached,
  ceilingMsat,
  chunkMsat,
} from '../../../src/streams/accrual.js';
import type { Caps, Rate } from '../../../src/streams/types.js';

const time = (rateMsat: bigint, perSeconds = 1): Rate => ({
  kind: 'time',
  rateMsat: msat(rateMsat),
  perSeconds,
});
const metered = (price: bigint): Rate => ({ kind: 'metered', priceMsatPerUnit: msat(price) });

describe('accrual', () => {
  it('accrues a rational rate exactly: 1 sat a minute', () => {
    const r = time(1000n, 60);
    expect([1, 59, 60, 61, 90, 3600].map((s) => accruedMsat(r, {}, s, 0n))).toEqual([
      16n,
      983n,
      1000n,
      1016n,
      1500n,
      60_000n,
    ]);
  });

  it('metered streams accrue price × units; caps clamp both kinds', () => {
    expect(accruedMsat(metered(7n), {}, 100, 3n)).toBe(21n);
    expect(accruedMsat(metered(7n), { maxTotalMsat: msat(20) }, 100, 3n)).toBe(20n);
    expect(accruedMsat(time(1000n), { maxDurationSeconds: 5 }, 9, 0n)).toBe(5000n);
    expect(accruedMsat(time(1000n), { maxTotalMsat: msat(2500) }, 9, 0n)).toBe(2500n);
  });

  it('reaches a cap at the duration or at the total, whichever is first', () => {
    const r = time(1000n, 3);
    expect(ceilingMsat(r, { maxDurationSeconds: 9, maxTotalMsat: msat(5000) })).toBe(3000n);
    expect(ceilingMsat(r, { maxDurationSeconds: 9, maxTotalMsat: msat(2000) })).toBe(2000n);
    expect(ceilingMsat(r, {})).toBeUndefined();
    expect(capReached(r, { maxDurationSeconds: 9 }, 8, 2666n)).toBe(false);
    expect(capReached(r, { maxDurationSeconds: 9 }, 9, 3000n)).toBe(true);
    expect(capReached(r, { maxTotalMsat: msat(2000) }, 6, 2000n)).toBe(true);
    expect(capReached(metered(5n), { maxTotalMsat: msat(20) }, 0, 15n)).toBe(false);
    expect(capReached(metered(5n), { maxDurationSeconds: 10 }, 10, 0n)).toBe(true);
  });

  it('counts whole active seconds across pauses, keeping the sub-second remainder', () => {
    expect(activeSecondsAt(0, 1000, 2999)).toBe(1);
    expect(activeSecondsAt(700, 1000, 1300)).toBe(1);
    expect(activeSecondsAt(700, undefined, 99_999)).toBe(0);
    expect(activeSecondsAt(1500, 5000, 4000)).toBe(1); // a tick before the segment began
  });

  it('sizes chunks: 60 s of rate (rounded up), at least what is due, at most what the caps allow', () => {
    expect(chunkMsat(time(1000n, 60), {}, 0n, 0n, 60, undefined)).toBe(1000n);
    expect(chunkMsat(time(1n, 7), {}, 0n, 0n, 60, undefined)).toBe(9n); // ceil(60 / 7)
    expect(chunkMsat(time(5n), {}, 0n, 1000n, 60, undefined)).toBe(1000n);
    expect(chunkMsat(time(1000n), { maxTotalMsat: msat(90_000) }, 50_000n, 0n, 60, undefined)).toBe(40_000n);
    expect(chunkMsat(time(1000n), { maxDurationSeconds: 10 }, 10_000n, 0n, 60, undefined)).toBe(0n);
    expect(chunkMsat(metered(3n), {}, 0n, 0n, 60, undefined)).toBe(3000n);
    expect(chunkMsat(metered(3n), {}, 0n, 10n, 60, msat(5))).toBe(10n);
  });

  it('property: tick payments sum to the closed-form total, for any rate, duration and pauses', () => {
    const segment = fc.record({
      activeMs: fc.integer({ min: 0, max: 30_000 }),
      pausedMs: fc.integer({ min: 0, max: 5_000 }),
    });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 12n }),
        fc.integer({ min: 1, max: 3600 }),
        fc.array(segment, { minLength: 1, maxLength: 8 }),
        fc.option(fc.bigInt({ min: 1n, max: 10n ** 13n }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 200 }), { nil: undefined }),
        fc.integer({ min: 0, max: 999 }),
        (rateMsat, perSeconds, segments, maxTotal, maxDuration, phase) => {
          const rate = time(rateMsat, perSeconds);
          const caps: Caps = {
            ...(maxTotal !== undefined ? { maxTotalMsat: msat(maxTotal) } : {}),
            ...(maxDuration !== undefined ? { maxDurationSeconds: maxDuration } : {}),
          };
          // Ticks every second of wall time (offset by `phase`), plus a settlement at each pause.
          let banked = 0;
          let paid = 0n;
          let t = 0;
          const pay = (since: number, at: number): void => {
            const due = accruedMsat(rate, caps, activeSecondsAt(banked, since, at), 0n) - paid;
            expect(due).toBeGreaterThanOrEqual(0n);
            paid += due;
          };
          for (const seg of segments) {
            const since = t;
            for (
              let tick = Math.ceil((t - phase) / 1000) * 1000 + phase;
              tick < t + seg.activeMs;
              tick += 1000
            )
              if (tick > t) pay(since, tick);
            t += seg.activeMs;
            pay(since, t);
            banked += seg.activeMs;
            t += seg.pausedMs;
          }
          const total = accruedMsat(rate, caps, Math.floor(banked / 1000), 0n);
          expect(paid).toBe(total);
          const exact =
            (rateMsat * BigInt(Math.min(Math.floor(banked / 1000), maxDuration ?? Infinity))) /
            BigInt(perSeconds);
          expect(total).toBe(maxTotal !== undefined && exact > maxTotal ? maxTotal : exact);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: accrual never decreases and each second adds at most ceil(rate / per)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        fc.integer({ min: 1, max: 86_400 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        (rateMsat, per, secs) => {
          const r = time(rateMsat, per);
          const step = accruedMsat(r, {}, secs + 1, 0n) - accruedMsat(r, {}, secs, 0n);
          expect(step).toBeGreaterThanOrEqual(0n);
          expect(step).toBeLessThanOrEqual((rateMsat + BigInt(per) - 1n) / BigInt(per));
        },
      ),
    );
  });
});
