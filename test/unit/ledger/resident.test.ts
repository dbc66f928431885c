import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger, NotResidentError } from '../../../src/ledger/ledger.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

const MINUTE = 60_000;

/** A ledger over an in-memory store with a clock the test moves. */
async function setup(options: {
  accountCacheSize?: number;
  transferCacheSize?: number;
  keyCacheSize?: number;
}) {
  const clock = { now: 1_700_000_000_000 };
  const store = new MemoryLedgerStore();
  const open = () => Ledger.open(store, { now: () => clock.now, ...options });
  const ledger = await open();
  ledger.createAccount({ id: 'world', kind: 'system', name: 'world', allowNegative: true });
  return { clock, store, ledger, open };
}

describe('accounts on demand', () => {
  it('evicts idle accounts past the cache size and reloads them with identical balances', async () => {
    const { clock, ledger, store } = await setup({ accountCacheSize: 10 });
    const ids = Array.from({ length: 40 }, (_, i) => `acct-${i}`);
    for (const id of ids) ledger.createAccount({ id, kind: 'agent', name: id });
    for (const [i, id] of ids.entries())
      ledger.transfer({
        debitAccountId: 'world',
        creditAccountId: id,
        amount: msat(1000 + i),
        code: 'funding',
      });
    for (const [i, id] of ids.entries())
      ledger.transfer({
        debitAccountId: id,
        creditAccountId: ids[(i + 1) % ids.length]!,
        amount: msat(7 * i + 1),
        code: 'transfer',
      });
    await ledger.flush();
    const before = await ledger.listAccounts({ limit: 100 });
    // Nothing used in the last minute is evicted; after a minute, a durable batch evicts.
    expect(ledger.stats().accounts).toBe(41);
    clock.now += 2 * MINUTE;
    await ledger.ensure({ accounts: ['world'] });
    ledger.transfer({ debitAccountId: 'world', creditAccountId: 'acct-0', amount: msat(1), code: 'funding' });
    await ledger.flush();
    expect(ledger.stats().accounts).toBeLessThanOrEqual(10);
    expect(() => ledger.accountNow('acct-20')).toThrow(NotResidentError);
    const reads = store.reads;
    const after = await ledger.listAccounts({ limit: 100 });
    for (const id of ids.slice(1)) {
      expect(await ledger.getAccount(id)).toEqual(before.find((a) => a.id === id));
      expect(after.find((a) => a.id === id)).toEqual(before.find((a) => a.id === id));
    }
    expect(store.reads).toBeGreaterThan(reads);
    expect(await ledger.getAccount('nobody')).toBeUndefined();
    expect(ledger.accountNow('nobody')).toBeUndefined();
  });

  it('keeps evicting while an account older than the others is used more than once a second', async () => {
    const { clock, ledger } = await setup({ accountCacheSize: 20 });
    // `world` was loaded first and is used every half second: it must not hold eviction up.
    for (let i = 0; i < 400; i += 1) {
      const id = `acct-${i}`;
      await ledger.ensure({ accounts: [id] });
      ledger.createAccount({ id, kind: 'agent', name: id });
      ledger.transfer({ debitAccountId: 'world', creditAccountId: id, amount: msat(1), code: 'funding' });
      await ledger.flush();
      clock.now += 500;
    }
    // Only what was used in the last minute (120 accounts at two a second) may stay beyond the size.
    expect(ledger.stats().accounts).toBeLessThanOrEqual(121 + 1);
  });

  it('looks at a bounded number of items per batch while everything is pinned by recent use', async () => {
    const { clock, ledger } = await setup({ accountCacheSize: 10 });
    // 2,000 accounts made within one minute, each in a batch of its own: all pinned, the cache
    // far over its size. Eviction must not walk the whole minute again after every batch.
    for (let i = 0; i < 2000; i += 1) {
      ledger.createAccount({ id: `acct-${i}`, kind: 'agent', name: `acct-${i}` });
      await ledger.flush();
      if (i % 100 === 99) clock.now += 1000;
    }
    expect(ledger.stats().accounts).toBe(2001);
    expect(ledger.stats().evictionVisits).toBeLessThanOrEqual(2 * 2000);
    // Once the minute is over, the items placed before it go, up to the size, in a few batches.
    clock.now += 2 * MINUTE;
    for (let i = 0; i < 3; i += 1) {
      ledger.transfer({
        debitAccountId: 'world',
        creditAccountId: 'acct-1999',
        amount: msat(1),
        code: 'funding',
      });
      await ledger.flush();
    }
    expect(ledger.stats().accounts).toBeLessThanOrEqual(10);
  });

  it('evicts what was placed over a minute ago even when a recently placed item follows', async () => {
    const { clock, ledger } = await setup({ accountCacheSize: 5 });
    for (let i = 0; i < 20; i += 1) ledger.createAccount({ id: `old-${i}`, kind: 'agent', name: `old-${i}` });
    await ledger.flush();
    clock.now += 2 * MINUTE;
    for (let i = 0; i < 3; i += 1) ledger.createAccount({ id: `new-${i}`, kind: 'agent', name: `new-${i}` });
    await ledger.flush();
    // The old ones (placed first) went; the new ones, pinned, stay.
    for (let i = 0; i < 3; i += 1) expect(ledger.accountNow(`new-${i}`)).toBeDefined();
    expect(() => ledger.accountNow('old-0')).toThrow(NotResidentError);
    expect(ledger.stats().accounts).toBeLessThanOrEqual(5);
  });

  it('never evicts an account with a pending transfer', async () => {
    const { clock, ledger } = await setup({ accountCacheSize: 1 });
    for (const id of ['a', 'b', 'c']) ledger.createAccount({ id, kind: 'agent', name: id });
    ledger.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(100), code: 'funding' });
    const hold = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(40),
      code: 'payment',
      pending: true,
    }).value;
    await ledger.flush();
    clock.now += 2 * MINUTE;
    await ledger.putRecords([{ key: 'x', value: '1' }]);
    ledger.createAccount({ kind: 'agent', name: 'fresh' });
    await ledger.flush();
    expect(ledger.accountNow('a')?.debitsPending).toBe(40n);
    expect(ledger.accountNow('b')?.creditsPending).toBe(40n);
    expect(() => ledger.accountNow('c')).toThrow(NotResidentError);
    // The pending transfer is posted without any ensure: both accounts are resident.
    ledger.post(hold.id, msat(30));
    expect(ledger.accountNow('a')?.debitsPosted).toBe(30n);
  });

  it('a synchronous step on an account never loaded is a loud error, not ACCOUNT_NOT_FOUND', async () => {
    const { ledger, open } = await setup({});
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    await ledger.flush();
    const reopened = await open();
    expect(() =>
      reopened.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(1), code: 'funding' }),
    ).toThrow(NotResidentError);
    expect(() => reopened.createAccount({ id: 'a', kind: 'agent', name: 'a' })).toThrow(NotResidentError);
    await reopened.ensure({ accounts: ['a', 'ghost'] });
    expect(() => reopened.createAccount({ id: 'a', kind: 'agent', name: 'a' })).toThrow(
      expect.objectContaining({ code: 'ACCOUNT_EXISTS' }),
    );
    expect(() =>
      reopened.transfer({ debitAccountId: 'a', creditAccountId: 'ghost', amount: msat(1), code: 'transfer' }),
    ).toThrow(expect.objectContaining({ code: 'ACCOUNT_NOT_FOUND' }));
  });
});

describe('start-up and history on disk', () => {
  it('reopens with only the pending transfers (and their accounts) in memory', async () => {
    const { ledger, store, open } = await setup({});
    for (const id of ['a', 'b', 'c']) ledger.createAccount({ id, kind: 'agent', name: id });
    for (let i = 0; i < 50; i++)
      ledger.transfer({ debitAccountId: 'world', creditAccountId: 'c', amount: msat(10), code: 'funding' });
    ledger.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(1000), code: 'funding' });
    const hold = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(300),
      code: 'payment',
      pending: true,
    }).value;
    const final = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(5),
      code: 'transfer',
    });
    await ledger.flush();
    const reads = store.reads;
    const reopened = await open();
    expect(reopened.stats()).toEqual({
      accounts: 2,
      pending: 1,
      recentTransfers: 0,
      keys: 0,
      evictionVisits: 0,
    });
    expect(store.reads - reads).toBe(2); // the two accounts of the pending transfer, nothing else
    expect(reopened.getTransferSync(hold.id)?.state).toBe('pending');
    expect(reopened.getTransferSync(final.value.id)).toBeUndefined();
    expect((await reopened.getTransfer(final.value.id))?.amount).toBe(5n);
    expect(reopened.spending('a').inFlight).toBe(1);
    expect(reopened.spending('a').spentSince(0)).toBe(305n);
    reopened.void(hold.id);
    expect(reopened.accountNow('a')?.debitsPending).toBe(0n);
  });
});

describe('ledger idempotency keys on disk', () => {
  const credit = (ledger: Ledger, amount = 500) =>
    ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: 'a',
      amount: msat(amount),
      code: 'invoice',
      idempotencyKey: 'invoice:abc',
    });

  it('replays a key after a restart and after its cache entry was evicted', async () => {
    const { clock, ledger, open } = await setup({ keyCacheSize: 1, transferCacheSize: 1 });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    const first = credit(ledger).value;
    await ledger.flush();

    const reopened = await open();
    expect(() => credit(reopened)).toThrow(NotResidentError);
    expect((await reopened.findByIdempotencyKey('invoice:abc'))?.id).toBe(first.id);
    await reopened.ensure({ accounts: ['world', 'a'], keys: ['invoice:abc'] });
    const replay = credit(reopened);
    expect(replay.replayed).toBe(true);
    expect(replay.value.id).toBe(first.id);
    expect(() => credit(reopened, 501)).toThrow(expect.objectContaining({ code: 'IDEMPOTENCY_CONFLICT' }));

    // Other keys push it out of the (one-entry) cache once it is idle and durable.
    clock.now += 2 * MINUTE;
    for (let i = 0; i < 3; i++) {
      await reopened.ensure({ accounts: ['world', 'a'], keys: [`fund:${i}`] });
      reopened.transfer({
        debitAccountId: 'world',
        creditAccountId: 'a',
        amount: msat(1),
        code: 'funding',
        idempotencyKey: `fund:${i}`,
      });
      await reopened.flush();
      clock.now += 2 * MINUTE;
    }
    await reopened.flush();
    expect(reopened.stats().keys).toBeLessThanOrEqual(2);
    expect(() => credit(reopened)).toThrow(NotResidentError);
    await reopened.ensure({ accounts: ['world', 'a'], keys: ['invoice:abc'] });
    expect(credit(reopened).value.id).toBe(first.id);
    expect(reopened.accountNow('a')?.creditsPosted).toBe(503n);
  });

  it('sees a key created by a concurrent request while its disk read was under way, evictions included', async () => {
    const { clock, ledger: first, store, open } = await setup({ keyCacheSize: 1, transferCacheSize: 1 });
    first.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    await first.flush();
    const ledger = await open();
    await ledger.ensure({ accounts: ['world', 'a'], keys: ['other:0', 'other:1'] });
    clock.now += 2 * MINUTE;
    // While the first request reads the key from disk, a second one creates it, makes it
    // durable, and it is evicted (other keys, a minute later) before the read returns.
    let interleave: (() => Promise<void>) | undefined = async () => {
      interleave = undefined;
      await ledger.ensure({ accounts: ['world', 'a'], keys: ['invoice:abc'] });
      const made = credit(ledger);
      await made.durable;
      clock.now += 2 * MINUTE;
      for (let i = 0; i < 2; i++) {
        ledger.transfer({
          debitAccountId: 'world',
          creditAccountId: 'a',
          amount: msat(1),
          code: 'funding',
          idempotencyKey: `other:${i}`,
        });
        await ledger.flush();
      }
      expect(ledger.stats().keys).toBe(2); // the two just made: invoice:abc was evicted
    };
    store.beforeRead = () => interleave?.();
    await ledger.ensure({ keys: ['invoice:abc'] });
    store.beforeRead = undefined;
    await ledger.ensure({ accounts: ['world', 'a'] });
    const second = credit(ledger);
    expect(second.replayed).toBe(true);
    expect(ledger.accountNow('a')?.creditsPosted).toBe(502n);
  });

  it('prunes keys older than the retention window with the background sweep', async () => {
    const { clock, ledger, store } = await setup({});
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    credit(ledger);
    await ledger.flush();
    expect(store.idempotency.has('invoice:abc')).toBe(true);
    clock.now += 33 * 24 * 3600_000;
    expect(await ledger.sweepKeys()).toBe(1);
    expect(store.idempotency.has('invoice:abc')).toBe(false);
    // A key past its retention counts no more: the same key makes a new transfer.
    expect(credit(ledger).replayed).toBe(false);
  });
});

describe('a store written before spend buckets', () => {
  it('counts the last 30 days of spending into the buckets once, at the first open', async () => {
    const first = await setup({});
    const { clock, store, open } = first;
    let ledger = first.ledger;
    ledger.createAccount({ id: 'agent', kind: 'agent', name: 'agent' });
    ledger.createAccount({ id: 'shop', kind: 'agent', name: 'shop' });
    ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: 'agent',
      amount: msat(100_000),
      code: 'funding',
    });
    ledger.transfer({
      debitAccountId: 'agent',
      creditAccountId: 'shop',
      amount: msat(1_000),
      code: 'transfer',
    });
    clock.now += 40 * 24 * 3600_000; // the first spend is older than every window
    ledger.transfer({
      debitAccountId: 'agent',
      creditAccountId: 'shop',
      amount: msat(2_000),
      code: 'transfer',
    });
    clock.now += 3600_000;
    const held = ledger.transfer({
      debitAccountId: 'agent',
      creditAccountId: 'shop',
      amount: msat(3_000),
      code: 'payment',
      pending: true,
    }).value;
    const voided = ledger.transfer({
      debitAccountId: 'agent',
      creditAccountId: 'shop',
      amount: msat(4_000),
      code: 'payment',
      pending: true,
    }).value;
    ledger.void(voided.id);
    await ledger.close();
    const day = 24 * 3600_000;
    const expected = ledger.spending('agent', clock.now).spentSince(clock.now - 7 * day);
    expect(expected).toBe(5_000n);
    // What an older version wrote: no buckets on the accounts, no counted time on the transfers.
    store.spend.clear();
    store.records.delete('ledgermark!spend-buckets');
    for (const t of store.transfers.values()) delete t.spentAt;
    ledger = await open();
    await ledger.ensure({ accounts: ['agent'] });
    expect(ledger.spending('agent', clock.now).spentSince(clock.now - 7 * day)).toBe(5_000n);
    expect(ledger.spending('agent', clock.now).countSince(clock.now - 7 * day)).toBe(2);
    expect(ledger.spending('agent', clock.now).inFlight).toBe(1);
    // The pending one takes out exactly what it added.
    ledger.void(held.id);
    expect(ledger.spending('agent', clock.now).spentSince(clock.now - 7 * day)).toBe(2_000n);
    await ledger.close();
    // Done once: the next open does not count them again.
    ledger = await open();
    await ledger.ensure({ accounts: ['agent'] });
    expect(ledger.spending('agent', clock.now).spentSince(clock.now - 7 * day)).toBe(2_000n);
    await ledger.close();
  });
});

describe('final transfers in memory', () => {
  it('stay bounded by ten times their cache size whatever the write rate', async () => {
    const { ledger } = await setup({ transferCacheSize: 10 });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    // 1,000 transfers within one second: all used "just now", none may pin memory past the bound.
    for (let i = 0; i < 1000; i += 1) {
      ledger.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(1), code: 'funding' });
      if (i % 50 === 49) await ledger.flush();
    }
    await ledger.flush();
    expect(ledger.stats().recentTransfers).toBeLessThanOrEqual(100 + 50);
    expect((await ledger.requireAccount('a')).creditsPosted).toBe(1000n);
  });
});
