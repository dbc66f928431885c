import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexWatermark } from '../../../src/lightning/lnd/index-watermark.js';

describe('IndexWatermark', () => {
  it('advances only over contiguous indexes', () => {
    const w = new IndexWatermark(12);
    expect(w.add(14)).toBe(true);
    expect(w.value).toBe(12); // 13 not handled yet: resuming from 14 would skip it
    expect(w.has(14)).toBe(true);
    expect(w.add(14)).toBe(false);
    expect(w.add(13)).toBe(true);
    expect(w.value).toBe(14);
    expect(w.add(3)).toBe(false);
  });

  it('for any delivery order with duplicates, handles each index once and ends at the top', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc
          .integer({ min: 1, max: 40 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.shuffledSubarray([...Array(n).keys(), ...Array(n).keys()], { minLength: 2 * n }),
            ),
          ),
        (start, [n, order]) => {
          const w = new IndexWatermark(start);
          const handled: number[] = [];
          for (const k of order) if (w.add(start + 1 + k)) handled.push(start + 1 + k);
          expect(handled.sort((a, b) => a - b)).toEqual([...Array(n).keys()].map((k) => start + 1 + k));
          expect(w.value).toBe(start + n);
        },
      ),
    );
  });
});
