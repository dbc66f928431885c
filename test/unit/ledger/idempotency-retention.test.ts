import { describe, expect, it } from 'vitest';
import { Ledger } from '../../../src/ledger/ledger.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

const DAY = 86_400_000;
const T0 = 1_000_000_000;

async function fixture(store = new MemoryLedgerStore(), start = T0) {
  const clock = { now: start };
  const ledger = await Ledger.open(store, { now: () => clock.now });
  await ledger.indexKeys();
  /** A client request under `key` that creates `ref` (or replays the first one's). */
  const request = (key: string, ref: string) =>
    ledger.idempotent(
      { accountId: 'a', key, operation: 'op', request: { ref } },
      async (records) => {
        await ledger.putRecords(records(ref));
        return `created ${ref}`;
      },
      (first) => `replayed ${first}`,
    );
  return { store, ledger, clock, request };
}

const keysOf = (store: MemoryLedgerStore, prefix: string) =>
  [...store.records.keys()].filter((k) => k.startsWith(prefix)).sort();

describe('client idempotency keys past their retention', () => {
  it('are deleted by the sweep, record and index entry; keys within retention stay', async () => {
    const { store, ledger, clock, request } = await fixture();
    await request('old', 'x');
    clock.now += 20 * DAY;
    await request('young', 'y');
    clock.now += 13 * DAY; // 'old' is 33 days old, 'young' 13
    expect(keysOf(store, 'idemat!')).toHaveLength(2);

    expect(await ledger.sweepRequestKeys()).toBe(1);
    expect(keysOf(store, 'idem!')).toEqual(['idem!a!young']);
    expect(keysOf(store, 'idemat!')).toEqual([`idemat!${String(T0 + 20 * DAY).padStart(15, '0')}!a!young`]);
    expect(await ledger.sweepRequestKeys()).toBe(0);
    // Within retention the key still replays its first result.
    expect(await request('young', 'y')).toBe('replayed y');
    await ledger.close();
  });

  it('never deletes a key renewed after expiry, whether before the sweep or while it reads', async () => {
    const { store, ledger, clock, request } = await fixture();
    await request('k', 'first');
    await request('j', 'first');
    clock.now += 33 * DAY;
    // 'k' is used again after its retention: a new record (a new time), the old entry stays.
    expect(await request('k', 'second')).toBe('created second');
    // 'j' is used again while the sweep reads its record (between its read and its delete).
    const read = store.getRecord.bind(store);
    let renew: (() => Promise<unknown>) | undefined = () => request('j', 'second');
    store.getRecord = async (key) => {
      const value = await read(key);
      const during = renew;
      renew = undefined;
      if (during && key === 'idem!a!j') await during();
      return value;
    };

    expect(await ledger.sweepRequestKeys()).toBe(2);
    expect(keysOf(store, 'idem!')).toEqual(['idem!a!j', 'idem!a!k']);
    expect(keysOf(store, 'idemat!')).toHaveLength(2);
    // Both keys still answer with their renewed result, and the sweep has nothing more to do.
    expect(await request('k', 'second')).toBe('replayed second');
    expect(await request('j', 'second')).toBe('replayed second');
    expect(await ledger.sweepRequestKeys()).toBe(0);
    await ledger.close();
  });

  it('treats a key past retention as absent even before any sweep', async () => {
    const { clock, request, ledger } = await fixture();
    await request('k', 'first');
    clock.now += 33 * DAY;
    expect(await request('k', 'second')).toBe('created second');
    await ledger.close();
  });
});

describe('keys written before their time index', () => {
  function olderStore(): MemoryLedgerStore {
    const store = new MemoryLedgerStore();
    for (const key of ['old1', 'old2'])
      store.records.set(
        `idem!a!${key}`,
        JSON.stringify({ operation: 'op', fingerprint: 'f', ref: key, at: T0 }),
      );
    store.idempotency.set('invoice:old', { transferId: 't1', fingerprint: 'f', at: T0 });
    store.unindexed.add('invoice:old');
    return store;
  }

  it('are indexed once in the background at open, then swept when their retention ends', async () => {
    const store = olderStore();
    const { ledger, clock } = await fixture(store, T0 + DAY);
    expect(keysOf(store, 'idemat!')).toHaveLength(2);
    expect(store.unindexed.size).toBe(0);
    expect(store.records.get('idemidx!v1')).toBe('done');

    clock.now = T0 + 33 * DAY;
    expect(await ledger.sweepRequestKeys()).toBe(2);
    expect(await ledger.sweepKeys()).toBe(1);
    expect(keysOf(store, 'idem')).toEqual(['idemidx!v1']);
    expect(store.idempotency.has('invoice:old')).toBe(false);
    await ledger.close();

    // Done once: a later open does not index again (a record without entry stays unindexed).
    store.records.set('idem!a!late', JSON.stringify({ operation: 'op', fingerprint: 'f', ref: 'l', at: T0 }));
    const again = await fixture(store, T0 + 33 * DAY);
    expect(keysOf(store, 'idemat!')).toEqual([]);
    await again.ledger.close();
  });

  it('resume after a crash from the page the mark names', async () => {
    const store = olderStore();
    // A run stopped after its first page, which held 'old1'.
    store.records.set('idemidx!v1', 'idem!a!old1');
    store.records.set('ledgermark!key-index', JSON.stringify({ after: 'invoice:old' }));
    const { ledger } = await fixture(store, T0 + DAY);
    expect(keysOf(store, 'idemat!')).toEqual([`idemat!${String(T0).padStart(15, '0')}!a!old2`]);
    expect(store.unindexed.has('invoice:old')).toBe(true);
    expect(store.records.get('idemidx!v1')).toBe('done');
    await ledger.close();
  });
});
