import { describe, expect, it } from 'vitest';
import { CappedSlots } from '../../../src/domain/slots.js';

describe('CappedSlots', () => {
  it('counts what exists and what is being created against the cap, per key', () => {
    const existing = new Map([['a', 2]]);
    const slots = new CappedSlots(3, (k) => existing.get(k) ?? 0);
    const first = slots.take('a');
    expect(first).toBeDefined();
    expect(slots.take('a')).toBeUndefined(); // 2 existing + 1 being created
    expect(slots.take('b')).toBeDefined(); // other keys have their own cap
    // The creation finished: what it made now exists, and its slot is released in the same step.
    existing.set('a', 3);
    first!.release();
    expect(slots.take('a')).toBeUndefined();
    existing.set('a', 1);
    expect(slots.take('a')).toBeDefined();
  });

  it('gives a slot back once however often it is released', () => {
    const slots = new CappedSlots(2, () => 0);
    const a = slots.take('k')!;
    const b = slots.take('k')!;
    expect(slots.take('k')).toBeUndefined();
    a.release();
    a.release();
    const c = slots.take('k');
    expect(c).toBeDefined();
    expect(slots.take('k')).toBeUndefined(); // b and c still hold theirs
    b.release();
    c!.release();
    expect(slots.take('k')).toBeDefined();
  });
});
