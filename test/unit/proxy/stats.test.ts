import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { ServiceStats, STATS_RETENTION_MS } from '../../../src/proxy/stats.js';
import { MemoryRecords } from '../../support/memory-records.js';

const HOUR = 3600_000;
const T0 = Date.UTC(2026, 0, 10, 12, 30);

function setup() {
  let now = T0;
  const store = new MemoryRecords();
  const stats = new ServiceStats(store, { now: () => now });
  return { store, stats, at: (t: number) => (now = t) };
}

describe('ServiceStats', () => {
  it('counts per hour and per day, merging what is not flushed with what is on disk', async () => {
    const { store, stats, at } = setup();
    stats.answered('svc', true);
    stats.charged('svc', msat(1500n));
    stats.challenged('svc');
    await stats.flush();
    stats.answered('svc', false);
    at(T0 + HOUR);
    stats.answered('svc', true);
    stats.charged('svc', msat(500n));
    const hours = await stats.buckets('svc', 'hour', { from: T0 - HOUR, to: T0 + 2 * HOUR, limit: 10 });
    expect(hours.map((b) => [b.start, b.requests, b.paidRequests, b.challenges, b.revenueMsat])).toEqual([
      [Date.UTC(2026, 0, 10, 12), 2, 1, 1, 1500n],
      [Date.UTC(2026, 0, 10, 13), 1, 1, 0, 500n],
    ]);
    const days = await stats.buckets('svc', 'day', { from: T0 - HOUR, to: T0 + 2 * HOUR, limit: 10 });
    expect(days).toEqual([
      expect.objectContaining({ start: Date.UTC(2026, 0, 10), requests: 3, revenueMsat: 1500n + 500n }),
    ]);
    await stats.flush();
    // One record per service, period and bucket: four (two hours, one day... twice the same day).
    expect([...store.records.keys()].filter((k) => k.startsWith('proxystat!'))).toHaveLength(3);
    expect(await stats.buckets('other', 'hour', { from: 0, to: T0 * 2, limit: 10 })).toEqual([]);
  });

  it('keeps the counters when a flush fails, and prunes buckets past their retention', async () => {
    const { store, stats, at } = setup();
    stats.answered('svc', true);
    const put = store.putRecords.bind(store);
    store.putRecords = () => Promise.reject(new Error('disk full'));
    await expect(stats.flush()).rejects.toThrow('disk full');
    store.putRecords = put;
    await stats.flush();
    expect((await stats.buckets('svc', 'hour', { from: 0, to: T0 * 2, limit: 10 }))[0]!.requests).toBe(1);
    at(T0 + STATS_RETENTION_MS.hour + 2 * HOUR);
    expect(await stats.prune()).toBe(1); // the hour; the day stays two years
    expect(await stats.buckets('svc', 'hour', { from: 0, to: T0 * 2, limit: 10 })).toEqual([]);
    expect(await stats.buckets('svc', 'day', { from: 0, to: T0 * 2, limit: 10 })).toHaveLength(1);
  });
});
