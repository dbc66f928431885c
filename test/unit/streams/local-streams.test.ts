import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { StreamsService } from '../../../src/streams/service.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import type { StreamsFixture } from './support.js';
import { balance, closingFixtures, OPEN, settle, streamsFixture, T0 } from './support.js';

const fixture = closingFixtures();

const available = (f: StreamsFixture, id: string): bigint => availableOf(f.ledger.accountNow(id)!);

async function pair(f: StreamsFixture, fund = 1_000_000n, policy = OPEN): Promise<void> {
  await f.account('payer', fund, policy);
  await f.account('payee', 0n);
}

describe('local streams', () => {
  it('moves the rate every second out of a 60 s chunk reserved up front', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    expect(s).toMatchObject({ state: 'active', mode: 'local', kind: 'time', paidMsat: 0n });
    expect(available(f, 'payer')).toBe(1_000_000n - 60_000n);
    await f.clock.advance(10_000);
    expect(balance(f, 'payee')).toBe(10_000n);
    expect(balance(f, 'payer')).toBe(990_000n);
    expect(available(f, 'payer')).toBe(940_000n); // the chunk's rest is still reserved
    expect(await f.streams.get(s.id)).toMatchObject({ activeSeconds: 10, paidMsat: 10_000n, owedMsat: 0n });
    const chunk = f.ledger.pendingTransfers().find((t) => t.code === 'stream')!;
    expect(chunk).toMatchObject({
      debitAccountId: 'payer',
      creditAccountId: 'payee',
      amount: 60_000n,
      advanced: 10_000n,
    });
  });

  it('pays a rational rate exactly: 1 sat a minute carries the sub-msat remainder', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', {
      payee: { accountId: 'payee' },
      rateMsat: msat(1000),
      perSeconds: 60,
    });
    await f.clock.advance(1000);
    expect(balance(f, 'payee')).toBe(16n);
    await f.clock.advance(89_000);
    expect(balance(f, 'payee')).toBe(1500n); // floor(1000 × 90 / 60), no drift
    expect((await f.streams.get(s.id)).paidMsat).toBe(1500n);
  });

  it('writes every stream of a tick in one batch, with its record', async () => {
    const f = await fixture();
    await f.account('payee', 0n);
    for (let i = 0; i < 50; i++) await f.account(`p${i}`, 1_000_000n);
    const ids: string[] = [];
    for (let i = 0; i < 50; i++)
      ids.push(
        (await f.streams.create(`p${i}`, { payee: { accountId: 'payee' }, rateMsat: msat(100 + i) })).id,
      );
    await settle();
    const before = f.store.commits;
    await f.clock.advance(1000);
    expect(f.store.commits - before).toBe(1);
    await f.clock.advance(1000);
    expect(f.store.commits - before).toBe(2);
    const record = JSON.parse(f.store.records.get(`stream!${ids[7]}`)!) as {
      d: { paid: string; activeMs: number };
    };
    expect(record.d).toMatchObject({ paid: String(2 * 107), activeMs: 2000 });
    expect(balance(f, 'payee')).toBe(2n * (50n * 100n + 1225n));
  });

  it('reports each tick: lag per paying stream and when it became durable', async () => {
    const stats: { advanced: number; lags: number[]; durable: Promise<void> }[] = [];
    const f = await fixture({
      onTick: (s) => stats.push({ advanced: s.advanced, lags: [...s.lagsMs], durable: s.durable }),
    });
    await pair(f);
    await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(5) });
    await f.clock.advance(2000);
    expect(stats.map((s) => s.advanced)).toEqual([1, 1]);
    expect(stats[0]!.lags).toEqual([0]); // the manual clock does not move during a tick
    await expect(stats[1]!.durable).resolves.toBeUndefined();
  });

  it('opens the next chunk when one runs out, asking the policy again', async () => {
    const f = await fixture();
    await pair(f);
    const asked: bigint[] = [];
    const authorize = f.service.authorizeSpend.bind(f.service);
    f.service.authorizeSpend = (id, req) => {
      asked.push(req.amountMsat);
      authorize(id, req);
    };
    await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(700), perSeconds: 3 });
    await f.clock.advance(150_000);
    expect(asked).toEqual([14_000n, 14_000n, 14_000n]);
    expect(balance(f, 'payee')).toBe(35_000n); // 700 × 150 / 3
    const journal = await f.ledger.journal('payee', { limit: 100 });
    expect(journal.filter((e) => e.type === 'transfer_posted').map((e) => e.amount)).toEqual([
      '14000',
      '14000',
    ]);
  });

  it('stops with funds_exhausted when the payer runs dry, having spent all it had', async () => {
    const f = await fixture();
    await pair(f, 5_500n);
    const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    expect(available(f, 'payer')).toBe(0n); // the first chunk took what there was
    await f.clock.advance(8000);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'funds_exhausted',
      stopCode: 'INSUFFICIENT_FUNDS',
      paidMsat: 5500n,
    });
    expect(balance(f, 'payee')).toBe(5500n);
    expect(balance(f, 'payer')).toBe(0n);
    expect(f.ledger.pendingTransfers()).toEqual([]);
    const last = f.events.filter((e) => e.accountId === 'payee').at(-1)!.event;
    expect(last).toMatchObject({
      type: 'stream',
      stream: { state: 'stopped', stopReason: 'funds_exhausted' },
    });
  });

  it('stops with policy_denied (and the denial code) when the budget refuses the next chunk', async () => {
    const f = await fixture();
    await pair(f, 1_000_000n, { rules: [{ type: 'budget', window: 'hour', maxMsat: msat(90_000) }] });
    const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    await f.clock.advance(65_000);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'policy_denied',
      stopCode: 'QUOTA_EXCEEDED',
      paidMsat: 60_000n,
      activeSeconds: 61,
      owedMsat: 1000n,
    });
    expect(balance(f, 'payee')).toBe(60_000n);
    expect(available(f, 'payer')).toBe(940_000n);
  });

  it('refuses to create a stream the policy or the funds refuse, leaving nothing behind', async () => {
    const f = await fixture();
    await f.account('payee', 0n);
    await f.account('nopolicy', 1_000_000n, { rules: [] });
    await f.account('poor', 0n);
    await expect(
      f.streams.create('nopolicy', { payee: { accountId: 'payee' }, rateMsat: msat(1) }),
    ).rejects.toMatchObject({ code: 'NO_POLICY', status: 403 });
    await expect(
      f.streams.create('poor', { payee: { accountId: 'payee' }, rateMsat: msat(1) }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect((await f.streams.list('payee')).streams).toEqual([]);
    expect(f.ledger.pendingTransfers()).toEqual([]);
  });

  it('pause settles and releases the chunk; resume reserves again and keeps the sub-second time', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    await f.clock.advance(2500);
    const paused = await f.streams.pause(s.id);
    expect(paused).toMatchObject({ state: 'paused', activeSeconds: 2, paidMsat: 2000n });
    expect(available(f, 'payer')).toBe(998_000n);
    expect(f.ledger.pendingTransfers()).toEqual([]);
    await f.clock.advance(30_000);
    expect(balance(f, 'payee')).toBe(2000n);
    await f.streams.resume(s.id);
    expect(available(f, 'payer')).toBe(998_000n - 60_000n);
    await f.clock.advance(600); // 2.5 s + 0.6 s active
    expect((await f.streams.get(s.id)).activeSeconds).toBe(3);
    await f.clock.advance(400); // a grid tick: 3.1 s active
    expect(balance(f, 'payee')).toBe(3000n);
    const types = f.events
      .filter((e) => e.accountId === 'payer')
      .map((e) => e.event.type === 'stream' && e.event.stream.state);
    expect(types).toEqual(['active', 'paused', 'active']);
  });

  it('stop pays what is due, posts what moved and returns the rest; both parties hear of it', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    await f.clock.advance(3000);
    f.clock.jump(1200);
    const stopped = await f.streams.stop(s.id, 'done watching');
    expect(stopped).toMatchObject({
      state: 'stopped',
      stopReason: 'requested',
      stopMessage: 'done watching',
      paidMsat: 4000n,
      activeSeconds: 4,
      stoppedAt: T0 + 4200,
    });
    expect(balance(f, 'payee')).toBe(4000n);
    expect(available(f, 'payer')).toBe(996_000n);
    expect(f.ledger.pendingTransfers()).toEqual([]);
    expect(f.events.filter((e) => e.accountId === 'payee').length).toBe(2); // created, stopped
    await f.clock.advance(5000);
    expect(balance(f, 'payee')).toBe(4000n);
  });

  it('stops at maxTotalMsat and at maxDurationSeconds with cap_reached, never paying beyond', async () => {
    const f = await fixture();
    await pair(f);
    const byTotal = await f.streams.create('payer', {
      payee: { accountId: 'payee' },
      rateMsat: msat(1000),
      maxTotalMsat: msat(2500),
    });
    const byTime = await f.streams.create('payer', {
      payee: { accountId: 'payee' },
      rateMsat: msat(333),
      perSeconds: 2,
      maxDurationSeconds: 5,
    });
    expect(available(f, 'payer')).toBe(1_000_000n - 2500n - 832n); // chunks clipped to the caps
    await f.clock.advance(10_000);
    expect(await f.streams.get(byTotal.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'cap_reached',
      paidMsat: 2500n,
    });
    expect(await f.streams.get(byTime.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'cap_reached',
      paidMsat: 832n, // floor(333 × 5 / 2)
      activeSeconds: 5,
    });
    expect(balance(f, 'payee')).toBe(3332n);
    expect(f.ledger.pendingTransfers()).toEqual([]);
  });

  it('a tick that comes late pays the whole time it covers', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    f.clock.jump(7300); // the event loop was blocked: the 1 s timers fire late
    await f.clock.advance(0);
    expect(balance(f, 'payee')).toBe(7000n);
    expect((await f.streams.get(s.id)).paidMsat).toBe(7000n);
  });

  it('metered streams pay price × reported units out of a prefund', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', {
      payee: { accountId: 'payee' },
      priceMsatPerUnit: msat(250),
      prefundMsat: msat(1000),
    });
    expect(s).toMatchObject({ kind: 'metered', units: 0n, prefundMsat: 1000n });
    expect(available(f, 'payer')).toBe(999_000n);
    await f.streams.reportUsage(s.id, 3);
    await f.clock.advance(1000);
    expect(balance(f, 'payee')).toBe(750n);
    await f.streams.reportUsage(s.id, 2);
    await f.streams.reportUsage(s.id, 5);
    await f.clock.advance(1000);
    expect(balance(f, 'payee')).toBe(2500n); // 10 units: two prefunds were opened
    expect(await f.streams.get(s.id)).toMatchObject({ units: 10n, paidMsat: 2500n, owedMsat: 0n });
  });

  it('metered streams default to a prefund of 1000 units and stop at their cap', async () => {
    const f = await fixture();
    await pair(f);
    const s = await f.streams.create('payer', {
      payee: { accountId: 'payee' },
      priceMsatPerUnit: msat(3),
      maxTotalMsat: msat(10),
    });
    expect(available(f, 'payer')).toBe(1_000_000n - 10n); // min(3 × 1000, cap)
    await f.streams.reportUsage(s.id, 2);
    await f.clock.advance(1000);
    expect(await f.streams.get(s.id)).toMatchObject({ state: 'active', paidMsat: 6n });
    await f.streams.reportUsage(s.id, 2);
    await f.clock.advance(1000);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'cap_reached',
      paidMsat: 10n,
    });
    await expect(f.streams.reportUsage(s.id, 1)).rejects.toMatchObject({
      code: 'STREAM_STOPPED',
      status: 409,
    });
  });

  it('routes a stream to this node and one of its recipient ids internally', async () => {
    const f = await fixture();
    await pair(f);
    const inbox = await f.receiver.createInbox('payee');
    const s = await f.streams.create('payer', {
      payee: { nodePubkey: inbox.nodePubkey, recipientId: inbox.recipientId },
      rateMsat: msat(10),
      intervalSeconds: 5,
    });
    expect(s).toMatchObject({ mode: 'local', payeeAccountId: 'payee' });
    await f.clock.advance(3000);
    expect(balance(f, 'payee')).toBe(30n);
    expect(f.lightning.payCalls).toBe(0);
    expect((await f.streams.list('payee')).streams.map((x) => x.id)).toEqual([s.id]);
  });

  it('lists an account’s streams as payer and payee, newest first', async () => {
    const f = await fixture();
    await pair(f);
    await f.account('third', 100_000n);
    const a = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1) });
    f.clock.jump(1);
    const b = await f.streams.create('third', { payee: { accountId: 'payer' }, rateMsat: msat(1) });
    expect((await f.streams.list('payer')).streams.map((s) => s.id)).toEqual([b.id, a.id]);
    expect((await f.streams.list('payee')).streams.map((s) => s.id)).toEqual([a.id]);
    expect((await f.streams.list('nobody')).streams).toEqual([]);
  });
});

describe('local streams, robustness', () => {
  it('opens a new chunk when the open one was settled outside the stream', async () => {
    const f = await streamsFixture();
    try {
      await f.account('payer', 1_000_000n);
      await f.account('payee', 0n);
      const s = await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
      await f.clock.advance(2000);
      const chunk = f.ledger.pendingTransfers().find((t) => t.code === 'stream')!;
      f.ledger.void(chunk.id, 'operator intervened');
      await f.clock.advance(2000);
      expect(await f.streams.get(s.id)).toMatchObject({ state: 'active', paidMsat: 4000n });
      expect(balanceOf(await f.ledger.requireAccount('payee'))).toBe(4000n);
      expect(f.ledger.pendingTransfers().filter((t) => t.code === 'stream')).toHaveLength(1);
    } finally {
      await f.close();
    }
  });
});

describe('chunk rollovers of streams started together', () => {
  it('are spread over many ticks by a per-stream cut of the first chunk', async () => {
    const f = await streamsFixture({ options: { firstChunkStagger: 0.5 } });
    try {
      await f.account('payee', 0n);
      const opened: number[] = [];
      const authorize = f.service.authorizeSpend.bind(f.service);
      f.service.authorizeSpend = (id, req) => {
        opened.push(f.clock.now());
        authorize(id, req);
      };
      for (let i = 0; i < 100; i++) await f.account(`p${i}`, 10_000_000n);
      const ids: string[] = [];
      for (let i = 0; i < 100; i++)
        ids.push(
          (await f.streams.create(`p${i}`, { payee: { accountId: 'payee' }, rateMsat: msat(1000) })).id,
        );
      const first = f.ledger.pendingTransfers().map((t) => t.amount);
      expect(Math.min(...first.map(Number))).toBeGreaterThan(30_000);
      expect(Math.max(...first.map(Number))).toBeLessThanOrEqual(60_000);
      opened.length = 0;
      await f.clock.advance(61_000);
      const perTick = new Map<number, number>();
      for (const t of opened) perTick.set(t, (perTick.get(t) ?? 0) + 1);
      expect(opened).toHaveLength(100); // every stream rolled over once...
      expect(perTick.size).toBeGreaterThan(15); // ...on many different ticks
      expect(Math.max(...perTick.values())).toBeLessThan(20);
      expect(balanceOf(await f.ledger.requireAccount('payee'))).toBe(100n * 61_000n);
    } finally {
      await f.close();
    }
  });

  it('refuses nonsensical scheduler options', async () => {
    const f = await streamsFixture();
    try {
      const deps = { ledger: f.ledger, payments: f.service, publish: () => undefined, log: f.log };
      expect(() => new StreamsService({ ...deps, options: { firstChunkStagger: 1 } })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      expect(() => new StreamsService({ ...deps, options: { chunkSeconds: 0 } })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    } finally {
      await f.close();
    }
  });
});
