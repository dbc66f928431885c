import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { encode } from '../../../src/payments/codec.js';
import { InvoiceStore, invoiceKeys } from '../../../src/payments/invoice-store.js';
import type { InvoiceRecord } from '../../../src/payments/types.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

const HOUR = 3600_000;

function invoice(fields: Partial<InvoiceRecord> = {}): InvoiceRecord {
  return {
    paymentHash: randomBytes(32).toString('hex'),
    accountId: 'alice',
    request: 'lnbcrt1',
    amountMsat: msat(1000),
    description: '',
    state: 'open',
    createdAt: 1_000,
    expiresAt: 1_000 + HOUR,
    ...fields,
  };
}

async function setup(now = { t: 1_000 }, options: { cachedRecords?: number } = {}) {
  const store = new MemoryLedgerStore();
  const ledger = await Ledger.open(store);
  const invoices = new InvoiceStore(ledger, { now: () => now.t, pruneGraceMs: HOUR, ...options });
  await invoices.open();
  return { store, ledger, invoices, now };
}

describe('InvoiceStore', () => {
  it('keeps records on disk and only a bounded number in memory', async () => {
    const { invoices } = await setup({ t: 1_000 }, { cachedRecords: 10 });
    const all = Array.from({ length: 50 }, () => invoice());
    for (const rec of all) await invoices.put(rec);
    expect(invoices.stats().cachedRecords).toBe(10);
    expect(await invoices.get(all[0]!.paymentHash)).toMatchObject({ paymentHash: all[0]!.paymentHash });
    expect(await invoices.get('zz')).toBeUndefined();
  });

  it('indexes an invoice by expiry only while LND may still take a payment for it', async () => {
    const { store, invoices } = await setup();
    const rec = invoice();
    await invoices.put(rec);
    const exp = invoiceKeys.expiry(rec.expiresAt, rec.paymentHash);
    expect(store.records.has(exp)).toBe(true);
    await invoices.put({ ...rec, state: 'settled', settledVia: 'internal' });
    expect(store.records.has(exp)).toBe(true); // its cancel in LND is not confirmed yet
    expect((await invoices.live(10)).entries).toEqual([{ hash: rec.paymentHash, kind: 'internal' }]);
    await invoices.put({ ...rec, state: 'settled', settledVia: 'internal', closedInLnd: true });
    expect(store.records.has(exp)).toBe(false);
    expect((await invoices.live(10)).entries).toEqual([]);
  });

  it('lists an account invoices newest first with a cursor; a credential only once paid', async () => {
    const { invoices } = await setup();
    const recs = [1, 2, 3].map((i) => invoice({ createdAt: i * 1000 }));
    for (const r of recs) await invoices.put(r);
    const first = await invoices.listByAccount('alice', 2);
    expect(first.hashes).toEqual([recs[2]!.paymentHash, recs[1]!.paymentHash]);
    const second = await invoices.listByAccount('alice', 2, first.next);
    expect(second).toEqual({ hashes: [recs[0]!.paymentHash] });

    const challenge = invoice({ accountId: 'l402:' + 'ab'.repeat(32) });
    await invoices.putCold(challenge);
    expect((await invoices.listByAccount(challenge.accountId, 5)).hashes).toEqual([]);
    await invoices.put({ ...challenge, state: 'settled', settledVia: 'lightning' });
    expect((await invoices.listByAccount(challenge.accountId, 5)).hashes).toEqual([challenge.paymentHash]);
  });

  it('prunes expired challenges from disk in bounded passes, and keeps account invoices', async () => {
    const { store, invoices, now } = await setup();
    const challenges = Array.from({ length: 5 }, () => invoice({ accountId: 'l402:' + 'cd'.repeat(32) }));
    for (const c of challenges) await invoices.putCold(c);
    const own = invoice();
    await invoices.put(own);
    const later = invoice({ accountId: 'l402:' + 'ef'.repeat(32), expiresAt: 1_000 + 5 * HOUR });
    await invoices.putCold(later);

    now.t = 1_000 + HOUR + HOUR / 2; // expired, but within the grace
    expect(await invoices.prune()).toBe(0);
    now.t = 1_000 + 3 * HOUR;
    expect(await invoices.prune(4)).toBe(4);
    expect(await invoices.prune(4)).toBe(2);
    expect(await invoices.prune(4)).toBe(0);
    for (const c of challenges) expect(store.records.has(invoiceKeys.record(c.paymentHash))).toBe(false);
    expect(await invoices.get(own.paymentHash)).toMatchObject({ state: 'open' }); // history stays
    // Open challenges have their own expiry index: reconciliation's walk never meets them.
    expect((await invoices.live(10)).entries).toEqual([]);
    expect(store.records.has(invoiceKeys.challengeExpiry(later.expiresAt, later.paymentHash))).toBe(true);
    // A challenge an older version filed in the shared index is still pruned from there.
    const legacy = invoice({ accountId: 'l402:' + 'ab'.repeat(32), expiresAt: 1_000 });
    store.records.set(invoiceKeys.record(legacy.paymentHash), encode(legacy));
    store.records.set(invoiceKeys.expiry(legacy.expiresAt, legacy.paymentHash), 'c');
    expect((await invoices.live(10)).entries).toEqual([{ hash: legacy.paymentHash, kind: 'challenge' }]);
    expect(await invoices.prune(4)).toBe(1);
    expect(store.records.has(invoiceKeys.record(legacy.paymentHash))).toBe(false);
    expect((await invoices.live(10)).entries).toEqual([]);
  });

  it('indexes records written before the indexes existed, once', async () => {
    const store = new MemoryLedgerStore();
    const old = invoice();
    const paid = invoice({ state: 'settled', settledVia: 'lightning' });
    store.records.set(invoiceKeys.record(old.paymentHash), encode(old));
    store.records.set(invoiceKeys.record(paid.paymentHash), encode(paid));
    const ledger = await Ledger.open(store);
    const invoices = new InvoiceStore(ledger);
    await invoices.open();
    expect((await invoices.live(10)).entries).toEqual([{ hash: old.paymentHash, kind: 'open' }]);
    expect((await invoices.listByAccount('alice', 10)).hashes).toHaveLength(2);
    expect(store.records.has(invoiceKeys.indexed)).toBe(true);
  });
});
