import { describe, expect, it } from 'vitest';
import { ApiKeys } from '../../../src/auth/api-keys.js';
import { MemoryRecords } from '../../support/memory-records.js';

function countingStore(): { store: MemoryRecords; listed: () => number } {
  const store = new MemoryRecords();
  return { store, listed: () => store.listed };
}

describe('ApiKeys: records read on demand', () => {
  it('verifies a key after a restart without loading every key at start', async () => {
    const { store, listed } = countingStore();
    const before = new ApiKeys(store);
    await before.load();
    const minted = [];
    for (let i = 0; i < 20; i += 1)
      minted.push(await before.create({ type: 'operator' }, `acct${i % 4}`, ['read']));
    const start = listed();
    const after = new ApiKeys(store, Date.now, 3); // a restart, with room for 3 keys in memory
    await after.load();
    expect(listed() - start).toBe(0); // the start read no key record
    for (const m of minted) expect((await after.verify(m.key))?.id).toBe(m.record.id);
    expect(await after.verify(minted[0]!.key.slice(0, -1) + 'x')).toBeUndefined();
    expect((await after.list('acct1')).map((k) => k.id).sort()).toEqual(
      minted
        .filter((_, i) => i % 4 === 1)
        .map((m) => m.record.id)
        .sort(),
    );
  });

  it('sees a revocation, from the cache and from disk', async () => {
    const store = new MemoryRecords();
    const keys = new ApiKeys(store);
    const { key, record } = await keys.create({ type: 'operator' }, 'alice', ['pay']);
    expect(await keys.verify(key)).toBeDefined();
    await keys.revoke('alice', record.id);
    expect(await keys.verify(key)).toBeUndefined();
    expect(await new ApiKeys(store).verify(key)).toBeUndefined();
    await expect(keys.revoke('bob', record.id)).rejects.toMatchObject({ code: 'KEY_NOT_FOUND' });
  });

  it('indexes the keys of an older store by account once, at the first start', async () => {
    const store = new MemoryRecords();
    const old = new ApiKeys(store);
    const { record } = await old.create({ type: 'operator' }, 'alice', ['read']);
    // An older store: the key record without its index entry or the mark.
    await store.putRecords([
      { key: `keyby!alice!${record.id}`, value: null },
      { key: 'keyidx!v1', value: null },
    ]);
    const keys = new ApiKeys(store);
    expect(await keys.list('alice')).toEqual([]);
    await keys.load();
    expect((await keys.list('alice')).map((k) => k.id)).toEqual([record.id]);
  });

  it('one process owning its store: a cached key is never read again, however old', async () => {
    const store = new MemoryRecords();
    const clock = { t: 1_000_000 };
    const keys = new ApiKeys(store, () => clock.t);
    const { key } = await keys.create({ type: 'operator' }, 'alice', ['pay']);
    const reads = store.reads;
    for (let i = 0; i < 5; i++) {
      clock.t += 3600_000;
      expect(await keys.verify(key)).toBeDefined();
    }
    expect(store.reads).toBe(reads);
  });

  it('a shared store: a key revoked through another instance is refused once the cached record is maxAgeMs old', async () => {
    const store = new MemoryRecords();
    const clock = { t: 1_000_000 };
    const now = (): number => clock.t;
    const [a, b] = [
      new ApiKeys(store, now, 100, { maxAgeMs: 1000 }),
      new ApiKeys(store, now, 100, { maxAgeMs: 1000 }),
    ];
    const { key, record } = await a.create({ type: 'operator' }, 'alice', ['pay']);
    expect(await b.verify(key)).toBeDefined();
    const reads = store.reads;
    // Within the bound the cached record serves every request: no read each time.
    for (let i = 0; i < 3; i++) expect(await a.verify(key)).toBeDefined();
    expect(store.reads).toBe(reads);
    const revoked = await b.revoke('alice', record.id);
    clock.t += 1000;
    expect(await a.verify(key)).toBeUndefined();
    expect(store.reads).toBe(reads + 2); // the revoke's fresh read, then the first instance's
    // A revocation is never undone by an older record read meanwhile, and keeps its first time.
    expect((await a.revoke('alice', record.id)).revokedAt).toBe(revoked.revokedAt);
    clock.t += 1000;
    expect(await b.verify(key)).toBeUndefined();
  });
});
