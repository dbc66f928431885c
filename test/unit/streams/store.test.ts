import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { encodeStreamRecord } from '../../../src/streams/records.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import type { FixtureOptions, StreamsFixture } from './support.js';
import { closingFixtures, keysendInvoice, ManualClock } from './support.js';

const open = closingFixtures();
const local = { accountId: 'payee' };

/** What a store written before the stream indexes holds: the records only. */
async function dropIndexes(f: StreamsFixture): Promise<void> {
  const drop: { key: string; value: null }[] = [];
  for (const prefix of [
    'streamopen!',
    'streamat!',
    'streamby!',
    'streamidx!',
    'streaminopen!',
    'streaminby!',
    'streaminidx!',
  ])
    for (const r of await f.ledger.listRecords(prefix)) drop.push({ key: r.key, value: null });
  expect(drop.length).toBeGreaterThan(0);
  await f.ledger.putRecords(drop);
}

async function twoAccounts(o: FixtureOptions): Promise<StreamsFixture> {
  const f = await open(o);
  await f.account('payer', 100_000_000n);
  await f.account('payee', 0n);
  return f;
}

describe('streams on disk', () => {
  it('a restart loads only the open streams: 1,000 stopped ones stay on disk and still answer', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await twoAccounts({ store, clock });
    const stopped: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const s = await f.streams.create('payer', { payee: local, rateMsat: msat(10) });
      await f.streams.stop(s.id);
      stopped.push(s.id);
    }
    const active = await f.streams.create('payer', { payee: local, rateMsat: msat(10) });
    await f.close();
    const g = await open({ store, clock, lightning: f.lightning });
    expect(g.streams.stats()).toEqual({ open: 1, stoppedInMemory: 0 });
    expect(await g.streams.get(active.id)).toMatchObject({ state: 'active' });
    expect(await g.streams.get(stopped[0]!)).toMatchObject({ id: stopped[0], state: 'stopped' });
    await expect(g.streams.resume(stopped[1]!)).rejects.toMatchObject({ code: 'STREAM_STOPPED' });
    await clock.advance(3000);
    expect((await g.streams.get(active.id)).paidMsat).toBe(30n);
    // A stream that stops leaves the open set for the bounded cache of recent ones.
    await g.streams.stop(active.id);
    expect(g.streams.stats().open).toBe(0);
  });

  it('pages each stream once, newest first, for the payer and the payee', async () => {
    const clock = new ManualClock();
    const f = await twoAccounts({ clock });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const s = await f.streams.create('payer', { payee: local, rateMsat: msat(1) });
      if (i % 2 === 0) await f.streams.stop(s.id);
      ids.push(s.id);
      if (i % 3 === 0) await clock.advance(1000);
    }
    for (const account of ['payer', 'payee']) {
      const seen: string[] = [];
      let before: string | undefined;
      for (;;) {
        const page = await f.streams.list(account, { limit: 3, ...(before ? { before } : {}) });
        seen.push(...page.streams.map((s) => s.id));
        if (!page.next) break;
        before = page.next;
      }
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort()).toEqual([...ids].sort());
      const created = await Promise.all(seen.map(async (id) => (await f.streams.get(id)).createdAt));
      expect(created).toEqual([...created].sort((a, b) => b - a));
    }
    expect((await f.streams.list('nobody')).streams).toEqual([]);
  });

  it('indexes a store written before the indexes once, at start, without loading stopped streams', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await twoAccounts({ store, clock });
    const a = await f.streams.create('payer', { payee: local, rateMsat: msat(10) });
    const b = await f.streams.create('payer', { payee: local, rateMsat: msat(10) });
    await f.streams.stop(b.id);
    await f.close();
    await dropIndexes(f);
    const scans = vi.spyOn(store, 'listRecords');
    const scanned = (): unknown[] => scans.mock.calls.map((c) => c[0]);
    const g = await open({ store, clock, lightning: f.lightning });
    expect(scanned()).toContain('stream!');
    expect(g.streams.stats()).toEqual({ open: 1, stoppedInMemory: 0 });
    expect((await g.streams.list('payer')).streams.map((s) => s.id).sort()).toEqual([a.id, b.id].sort());
    await g.close();
    scans.mockClear();
    const h = await open({ store, clock, lightning: f.lightning });
    expect(h.streams.stats().open).toBe(1);
    // The mark is there: the second start reads the open index only, never every stream record.
    expect(scanned()).toContain('streamopen!');
    expect(scanned()).not.toContain('stream!');
    scans.mockRestore();
  });
});

describe('incoming streams on disk', () => {
  const tagged = (streamId: string, seq: number, recipientId: string) => [
    { type: 133773310n, value: encodeStreamRecord({ streamId, seq, recipientId }) },
  ];

  it('a lapsed incoming stream leaves memory, answers from disk, and resumes when paid again after a restart', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await open({ store, clock });
    await f.account('alice', 0n);
    const { recipientId } = await f.receiver.createInbox('alice', { graceSeconds: 5 });
    const lapsing = randomUUID();
    const flowing = randomUUID();
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(lapsing, 1, recipientId), clock.now()));
    await clock.advance(6000);
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(flowing, 1, recipientId), clock.now()));
    expect(f.receiver.stats()).toEqual({ flowing: 1 });
    expect(await f.receiver.getIncoming(lapsing)).toMatchObject({ lapsed: true, totalMsat: 1000n });
    await f.close();
    const g = await open({ store, clock, lightning: f.lightning });
    expect(g.receiver.stats()).toEqual({ flowing: 1 });
    expect((await g.receiver.listIncoming('alice')).incoming.map((s) => s.streamId).sort()).toEqual(
      [lapsing, flowing].sort(),
    );
    // Two late deliveries at once (still lapsed), each reading the summary from disk: neither
    // loses the other's.
    const late = clock.now() - 60_000;
    await Promise.all([
      g.receiver.onInvoice(keysendInvoice(500n, tagged(lapsing, 2, recipientId), late)),
      g.receiver.onInvoice(keysendInvoice(500n, tagged(lapsing, 3, recipientId), late)),
    ]);
    expect(await g.receiver.getIncoming(lapsing)).toMatchObject({ lapsed: true, totalMsat: 2000n });
    expect(g.receiver.stats()).toEqual({ flowing: 1 });
    await g.receiver.onInvoice(keysendInvoice(500n, tagged(lapsing, 4, recipientId), clock.now()));
    expect(await g.receiver.getIncoming(lapsing)).toMatchObject({
      lapsed: false,
      totalMsat: 2500n,
      payments: 4,
    });
    expect(g.receiver.stats()).toEqual({ flowing: 2 });
    expect(g.events.filter((e) => e.event.type === 'stream_resumed')).toHaveLength(1);
    // Listed once, though paid twice.
    expect((await g.receiver.listIncoming('alice', { limit: 1 })).next).toBeDefined();
    expect((await g.receiver.listIncoming('alice')).incoming).toHaveLength(2);
  });

  it('indexes incoming summaries written before the indexes once, keeping lapsed ones on disk', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await open({ store, clock });
    await f.account('alice', 0n);
    const { recipientId } = await f.receiver.createInbox('alice', { graceSeconds: 5 });
    const lapsing = randomUUID();
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(lapsing, 1, recipientId), clock.now()));
    await clock.advance(6000);
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(randomUUID(), 1, recipientId), clock.now()));
    await f.close();
    await dropIndexes(f);
    const g = await open({ store, clock, lightning: f.lightning });
    expect(g.receiver.stats()).toEqual({ flowing: 1 });
    expect((await g.receiver.listIncoming('alice')).incoming).toHaveLength(2);
    expect(await g.ledger.getRecord('streaminidx!v1')).toBeDefined();
  });
});
