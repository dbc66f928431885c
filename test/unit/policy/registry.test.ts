import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { MemoryRecords } from '../../support/memory-records.js';
import { PolicyRegistry } from '../../../src/policy/registry.js';

const policy = (n: number) => ({ rules: [{ type: 'max_per_payment' as const, maxMsat: msat(n) }] });

describe('PolicyRegistry: policies read on demand into a bounded cache', () => {
  it('loads nothing at start and reads the policies a synchronous step ensures', async () => {
    const store = new MemoryRecords();
    const first = new PolicyRegistry(store);
    for (let i = 0; i < 6; i += 1) await first.set(`acct${i}`, policy(1000 + i));
    let now = 0;
    const registry = new PolicyRegistry(store, { cached: 2, now: () => now });
    const reads = store.reads;
    expect(() => registry.get('acct0')).toThrow(expect.objectContaining({ code: 'POLICY_NOT_LOADED' }));
    expect(store.reads).toBe(reads);
    await registry.ensure(['acct0', 'acct1']);
    now = 120_000; // those two are no longer pinned by their use
    await registry.ensure(['acct4', 'acct5', 'nobody']);
    // What was ensured is resident for the synchronous step that follows, beyond the cache size.
    expect(registry.get('acct4')?.rules[0]).toEqual({ type: 'max_per_payment', maxMsat: 1004n });
    expect(registry.get('acct5')).toEqual(policy(1005));
    expect(registry.get('nobody')).toBeUndefined();
    expect(() => registry.get('acct0')).toThrow(expect.objectContaining({ code: 'POLICY_NOT_LOADED' }));
    expect(await registry.find('acct0')).toEqual(policy(1000));
  });

  it('never evicts the policy of an account it is told to keep (money in flight)', async () => {
    const store = new MemoryRecords();
    const first = new PolicyRegistry(store);
    for (let i = 0; i < 6; i += 1) await first.set(`acct${i}`, policy(1000 + i));
    let now = 0;
    const busy = new Set(['acct0']);
    const registry = new PolicyRegistry(store, { cached: 2, now: () => now, keep: (id) => busy.has(id) });
    await registry.ensure(['acct0', 'acct1']);
    now = 120_000;
    await registry.ensure(['acct2', 'acct3', 'acct4']);
    expect(registry.get('acct0')).toEqual(policy(1000));
    expect(() => registry.get('acct1')).toThrow(expect.objectContaining({ code: 'POLICY_NOT_LOADED' }));
    busy.clear();
    now = 240_000;
    await registry.ensure(['acct5']);
    await registry.ensure(['acct1']);
    expect(() => registry.get('acct0')).toThrow(expect.objectContaining({ code: 'POLICY_NOT_LOADED' }));
  });

  it('reads an account once however many concurrent ensures, and a set wins over a read', async () => {
    const store = new MemoryRecords();
    await new PolicyRegistry(store).set('a', policy(1));
    const registry = new PolicyRegistry(store);
    const reads = store.reads;
    await Promise.all([registry.ensure('a'), registry.ensure('a'), registry.ensure(['a'])]);
    expect(store.reads - reads).toBe(1);
    const reading = registry.ensure('b');
    await registry.set('b', policy(2));
    await reading;
    expect(registry.get('b')).toEqual(policy(2));
  });

  it('refuses a stored policy that is not a policy', async () => {
    const store = new MemoryRecords();
    await store.putRecords([{ key: 'pol!x', value: '{"rules":[{"type":"budget","maxMsat":"-1"}]}' }]);
    await expect(new PolicyRegistry(store).find('x')).rejects.toMatchObject({ code: 'CORRUPT_RECORD' });
  });
});
