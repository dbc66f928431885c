import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../../src/domain/lru.js';

describe('BoundedCache', () => {
  it('evicts the least recently used entry beyond its size, never one used within the pin window', () => {
    let now = 0;
    const cache = new BoundedCache<string, number>(2, () => now, 1000);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3); // all three used within the last second: none may go
    expect(cache.size).toBe(3);
    now = 5000;
    expect(cache.get('a')).toBe(1); // a is used again: b is now the oldest
    cache.set('d', 4);
    expect(cache.has('b')).toBe(false);
    expect(cache.has('c')).toBe(false);
    expect([cache.get('a'), cache.get('d')]).toEqual([1, 4]);
    expect(cache.size).toBe(2);
  });
});
