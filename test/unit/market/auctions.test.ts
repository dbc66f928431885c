import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { scoreBid, TaskAuctions, type Auction } from '../../../src/market/auctions.js';
import type { TaskMarket } from '../../../src/market/tasks.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { CrashAfterLock, marketFixture } from './fixture.js';

/** Auctions over the market fixture; `tasks` stands in for the task market (to race it). */
async function fixture(
  store = new MemoryLedgerStore(),
  tasks?: (market: TaskMarket) => TaskMarket,
  maxOpenPerAccount?: number,
) {
  const m = await marketFixture(store);
  const events: Auction[] = [];
  const auctions = new TaskAuctions({
    ...(maxOpenPerAccount !== undefined ? { maxOpenPerAccount } : {}),
    ledger: m.ledger,
    tasks: tasks ? tasks(m.market) : m.market,
    registry: m.registry,
    publish: (_id, e) => void events.push(e.auction),
    log: pino({ level: 'silent' }),
    now: () => m.ledger.accountNow('payer')!.createdAt + m.clock.offset,
  });
  await auctions.start(3600_000);
  auctions.stop();
  if (m.registry.capabilitiesOf('other').size === 0)
    await m.registry.advertise('other', {
      title: 'labelling too',
      description: '',
      capabilities: ['vision', 'labelling'],
      priceMsat: msat(900),
      unit: 'task',
    });
  return { ...m, auctions, events };
}

/** An auto auction for `vision` (ceiling 1000 msat, 60 s of bids) where `payee` bid 800 msat, 600 s. */
async function openWithBid(f: Awaited<ReturnType<typeof fixture>>): Promise<Auction> {
  const a = await f.auctions.open('payer', {
    title: 'label',
    capabilities: ['vision'],
    maxRewardMsat: msat(1000),
    bidSeconds: 60,
    maxPromisedSeconds: 600,
  });
  await f.auctions.bid(a.id, 'payee', msat(800), 600);
  return a;
}

describe('task reverse auctions', () => {
  it('scores price, promised time and reputation as documented (lower wins)', () => {
    const a = {
      maxRewardMsat: msat(1000),
      maxPromisedSeconds: 7200,
      weights: { price: 50, time: 30, reputation: 20 },
    };
    const clean = { accountId: 'x', completed: 0, disputed: 0, lost: 0, late: 0 };
    expect(scoreBid(a, { accountId: 'x', priceMsat: msat(800), promisedSeconds: 3600, at: 0 }, clean)).toBe(
      50 * 800_000 + 30 * 500_000,
    );
    // One late task in four outcomes: risk = 1 / (3 + 0 + 1 + 1) = 0.2.
    const late = { accountId: 'y', completed: 3, disputed: 0, lost: 0, late: 1 };
    expect(scoreBid(a, { accountId: 'y', priceMsat: msat(800), promisedSeconds: 3600, at: 0 }, late)).toBe(
      50 * 800_000 + 30 * 500_000 + 20 * 200_000,
    );
  });

  it('awards the best score at the deadline and escrows the winning bid as the task reward', async () => {
    const f = await fixture();
    const a = await f.auctions.open('payer', {
      title: 'label 1000 images',
      capabilities: ['vision'],
      maxRewardMsat: msat(1000),
      bidSeconds: 60,
      maxPromisedSeconds: 7200,
    });
    // Cheaper but slow loses to a faster bid: 50×0.7 + 30×1.0 = 65 against 50×0.8 + 30×0.5 = 55.
    await f.auctions.bid(a.id, 'other', msat(700), 7200);
    await f.auctions.bid(a.id, 'payee', msat(800), 3600);
    await expect(f.auctions.bid(a.id, 'payer', msat(10), 10)).rejects.toMatchObject({
      code: 'TASK_FORBIDDEN',
    });
    await expect(f.auctions.bid(a.id, 'payee', msat(1001), 10)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const ranked = await f.auctions.ranking(await f.auctions.get(a.id));
    expect(ranked.map((b) => b.accountId)).toEqual(['payee', 'other']);
    await f.auctions.sweep(); // before the deadline: nothing happens
    expect((await f.auctions.get(a.id)).state).toBe('open');
    f.clock.offset += 61_000;
    await f.auctions.sweep();
    const done = await f.auctions.get(a.id);
    expect(done).toMatchObject({ state: 'awarded', winnerAccountId: 'payee' });
    const task = await f.market.get(done.taskId!);
    expect(task).toMatchObject({ state: 'claimed', agentAccountId: 'payee', rewardMsat: 800n });
    expect(f.avail('payer')).toBe(1_000_000n - 800n);
    await expect(f.auctions.bid(a.id, 'other', msat(1), 1)).rejects.toMatchObject({
      code: 'TASK_INVALID_STATE',
    });
  });

  it('lets the buyer pick a bidder; an auction without bids expires with nothing locked', async () => {
    const f = await fixture();
    const a = await f.auctions.open('payer', {
      title: 'pick',
      capabilities: ['vision'],
      maxRewardMsat: msat(1000),
      bidSeconds: 60,
      maxPromisedSeconds: 600,
      selection: 'manual',
    });
    await f.auctions.bid(a.id, 'payee', msat(500), 600);
    await f.auctions.bid(a.id, 'other', msat(900), 600);
    await expect(f.auctions.award(a.id, { kind: 'account', id: 'other' })).rejects.toMatchObject({
      code: 'TASK_FORBIDDEN',
    });
    const won = await f.auctions.award(a.id, { kind: 'account', id: 'payer' }, 'other');
    expect(won).toMatchObject({ state: 'awarded', winnerAccountId: 'other' });
    expect((await f.market.get(won.taskId!)).rewardMsat).toBe(900n);

    const empty = await f.auctions.open('payer', {
      title: 'none',
      maxRewardMsat: msat(10),
      bidSeconds: 1,
      maxPromisedSeconds: 1,
    });
    f.clock.offset += 2_000;
    await f.auctions.sweep();
    expect((await f.auctions.get(empty.id)).state).toBe('expired');
    expect(f.avail('payer')).toBe(1_000_000n - 900n);
  });

  it('a winner that can no longer take the task fails the award with nothing escrowed and no task left open', async () => {
    const f = await fixture();
    const a = await openWithBid(f);
    for (const o of f.registry.find({ accountId: 'payee' })) await f.registry.withdraw(o.id);
    f.clock.offset += 61_000;
    await f.auctions.sweep();
    expect(await f.auctions.get(a.id)).toMatchObject({ state: 'failed', failCode: 'MISSING_CAPABILITY' });
    expect(f.avail('payer')).toBe(1_000_000n);
    expect((await f.market.list({ state: 'open' })).tasks).toEqual([]);
    expect((await f.escrow.list('payer')).escrows).toEqual([]);
  });

  it('the task goes to the winner even when another agent tries to claim it during the award', async () => {
    // Another agent claims each task the moment it is published (the window between publish and claim).
    const f = await fixture(new MemoryLedgerStore(), (market) =>
      Object.assign(Object.create(market) as TaskMarket, {
        publishTask: async (...args: Parameters<TaskMarket['publishTask']>) => {
          const t = await market.publishTask(...args);
          await market.claim(t.id, 'other').catch(() => undefined);
          return t;
        },
      }),
    );
    const a = await openWithBid(f);
    const done = await f.auctions.award(a.id, { kind: 'account', id: 'payer' });
    expect(done).toMatchObject({ state: 'awarded', winnerAccountId: 'payee' });
    expect(await f.market.get(done.taskId!)).toMatchObject({ state: 'claimed', agentAccountId: 'payee' });
    expect(f.avail('payer')).toBe(1_000_000n - 800n);
  });

  it('an award a crash interrupted right after the reward was locked finishes at restart, locked once', async () => {
    const store = new CrashAfterLock();
    const before = await fixture(store);
    const a = await openWithBid(before);
    await before.auctions.award(a.id, { kind: 'account', id: 'payer' }).catch(() => undefined);
    before.escrow.stop();
    store.failNext = false; // the restarted gateway has a working disk

    const after = await fixture(store);
    expect((await after.auctions.get(a.id)).state).toBe('awarding');
    await after.auctions.sweep();
    const done = await after.auctions.get(a.id);
    expect(done).toMatchObject({ state: 'awarded', winnerAccountId: 'payee' });
    expect(await after.market.get(done.taskId!)).toMatchObject({ state: 'claimed', agentAccountId: 'payee' });
    expect(after.avail('payer')).toBe(1_000_000n - 800n);
    expect((await after.escrow.list('payer')).escrows.map((e) => e.id)).toEqual([
      (await after.market.get(done.taskId!)).escrowId,
    ]);
    after.escrow.stop();
  });

  it('caps the auctions an account has open; closing one makes room, and the count survives a restart', async () => {
    const store = new MemoryLedgerStore();
    const f = await fixture(store, undefined, 2);
    const input = { title: 't', maxRewardMsat: msat(10), bidSeconds: 60, maxPromisedSeconds: 60 };
    const first = await f.auctions.open('payer', input);
    await f.auctions.open('payer', input);
    await expect(f.auctions.open('payer', input)).rejects.toMatchObject({
      code: 'TOO_MANY_OPEN_AUCTIONS',
      status: 429,
    });
    await f.auctions.open('payee', input); // the cap is per account
    const again = await fixture(store, undefined, 2); // restarted: the open ones still count
    await expect(again.auctions.open('payer', input)).rejects.toMatchObject({
      code: 'TOO_MANY_OPEN_AUCTIONS',
    });
    await again.auctions.award(first.id, { kind: 'account', id: 'payer' }); // no bids: it expires
    expect((await again.auctions.get(first.id)).state).toBe('expired');
    await again.auctions.open('payer', input);
    await expect(again.auctions.open('payer', input)).rejects.toMatchObject({
      code: 'TOO_MANY_OPEN_AUCTIONS',
    });
    f.escrow.stop();
    again.escrow.stop();
  });
});
