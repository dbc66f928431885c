import { describe, expect, it, vi } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { availableOf } from '../../../src/ledger/types.js';
import { settle } from '../streams/support.js';
import { fixture, order, product } from './support.js';

type Fixture = Awaited<ReturnType<typeof fixture>>;

/** A delivering trade of 1000 Wh at 100,000 msat/kWh (100,000 msat in all) from p1 to the consumer. */
async function delivering(f: Fixture, consumer = 'c1', meterDeviceId?: string) {
  await f.account('p1', 0n);
  await f.account(consumer, 1_000_000n);
  await f.market.submit('p1', order('offer', 1000, 100_000));
  const { trades } = await f.market.submit(
    consumer,
    order('bid', 1000, 100_000, meterDeviceId !== undefined ? { meterDeviceId } : {}),
  );
  await f.run();
  const t = await f.market.getTrade(trades[0]!.id);
  expect(t.state).toBe('delivering');
  return t;
}

const refusal = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => 'accepted',
    (e: unknown) => (e as { code?: string }).code ?? String(e),
  );

describe('energy market: what is billed reaches the stream', () => {
  it.each([
    { then: 'the next reading', first: 500n, interval: 1, wh: 500n },
    { then: 'the retry of the last reading', first: 1000n, interval: 0, wh: 1000n },
  ])('a reading whose report to the stream failed is reported by $then', async ({ first, interval, wh }) => {
    const f = await fixture();
    const t = await delivering(f);
    vi.spyOn(f.streams, 'reportUsage').mockRejectedValueOnce(new Error('storage hiccup'));
    await expect(f.market.report(t.id, 'producer', 0, first)).rejects.toThrow('storage hiccup');
    await f.market.report(t.id, 'producer', interval, wh);
    await f.run();
    const done = await f.market.getTrade(t.id);
    expect([done.state, done.billedMsat, done.paidMsat, f.balance('p1')]).toEqual([
      'completed',
      100_000n,
      100_000n,
      100_000n,
    ]);
  });

  it('a restart reports what was billed but not reported (a crash between the two writes)', async () => {
    const f = await fixture();
    const t = await delivering(f);
    vi.spyOn(f.streams, 'reportUsage').mockRejectedValueOnce(new Error('killed'));
    await f.market.report(t.id, 'producer', 0, 500n).catch(() => undefined);
    f.market.stop();
    const restarted = f.newMarket();
    await restarted.start();
    restarted.stop();
    expect((await f.streams.get(t.streamId!)).units).toBe(50_000n);
  });

  it('a stream paused before pausing was refused is told what was billed meanwhile when it resumes', async () => {
    const f = await fixture();
    const t = await delivering(f);
    f.market.stop(); // an older gateway, without the pause guard
    await f.streams.pause(t.streamId!);
    const market = f.newMarket();
    await market.start();
    await market.report(t.id, 'producer', 0, 500n);
    expect((await f.streams.get(t.streamId!)).units).toBe(0n);
    await f.streams.resume(t.streamId!);
    await settle(20);
    market.stop();
    expect((await f.streams.get(t.streamId!)).units).toBe(50_000n);
  });

  it('refuses to pause a trade’s stream: a paused stream could not be told what was delivered', async () => {
    const f = await fixture();
    const t = await delivering(f);
    expect(await refusal(f.streams.pause(t.streamId!))).toBe('STREAM_NOT_PAUSABLE');
    await f.market.report(t.id, 'producer', 0, 500n);
    await f.market.report(t.id, 'producer', 1, 500n);
    await f.run();
    const done = await f.market.getTrade(t.id);
    expect([done.state, done.paidMsat]).toEqual(['completed', 100_000n]);
  });
});

describe('energy market: a refused reading changes nothing', () => {
  it('the reading over the pending limit is refused, and refused again when retried', async () => {
    const f = await fixture();
    const t = await delivering(f, 'c3', 'ab'.repeat(32));
    for (let i = 0; i < 32; i++) await f.market.report(t.id, 'consumer', i, 1n);
    expect(await refusal(f.market.report(t.id, 'consumer', 32, 1n))).toBe('ENERGY_TOO_MANY_PENDING_READINGS');
    const after = await f.market.getTrade(t.id);
    expect([after.consumerInterval, after.consumedWh, after.pendingConsumer.length]).toEqual([31, 32n, 32]);
    expect(await refusal(f.market.report(t.id, 'consumer', 32, 1n))).toBe('ENERGY_TOO_MANY_PENDING_READINGS');
  });
});

describe('energy market: trades close when their delivery window is over', () => {
  it('the sweep stops a delivering trade after windowEnd + grace, releasing the consumer’s chunk', async () => {
    const f = await fixture({ graceSeconds: 600 });
    const t = await delivering(f);
    await f.market.report(t.id, 'producer', 0, 200n);
    await f.run();
    f.clock.t = product.windowEnd + 599_000;
    await f.market.sweep();
    expect((await f.market.getTrade(t.id)).state).toBe('delivering');
    f.clock.t = product.windowEnd + 600_000;
    await f.market.sweep();
    await settle(20);
    const closed = await f.market.getTrade(t.id);
    expect([closed.state, closed.closeCode, closed.paidMsat]).toEqual([
      'stopped',
      'DELIVERY_WINDOW_ENDED',
      20_000n,
    ]);
    expect((await f.streams.get(t.streamId!)).state).toBe('stopped');
    const c1 = f.ledger.accountNow('c1')!;
    expect(availableOf(c1)).toBe(f.balance('c1'));
    expect(f.market.stats().openTrades).toBe(0);
    expect(await refusal(f.market.report(t.id, 'producer', 1, 100n))).toBe('ENERGY_TRADE_CLOSED');
  });
});

describe('energy market: state bounded by what is live', () => {
  it('forgets a product once its book is empty, and keeps its last price on disk', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await f.account('c1', 1_000_000n);
    for (let i = 0; i < 50; i++) {
      const { order: o } = await f.market.submit('p1', order('offer', 1, 1, { zone: `z${i}` }));
      await f.market.cancel('p1', o.id);
    }
    expect(f.market.stats().products).toBe(0);
    await f.market.submit('p1', order('offer', 10, 70_000));
    await f.market.submit('c1', order('bid', 10, 70_000));
    expect(f.market.stats().products).toBe(0);
    expect((await f.market.book(product)).lastPriceMsatPerKWh).toBe(70_000n);
  });
});

describe('energy market: bids need money, and nobody trades with themselves', () => {
  it('refuses a bid whose first chunk the bidder cannot cover', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await f.account('broke', 0n);
    await f.market.submit('p1', order('offer', 1000, 100_000));
    expect(await refusal(f.market.submit('broke', order('bid', 1000, 100_000)))).toBe('INSUFFICIENT_FUNDS');
    expect((await f.market.book(product)).offers).toEqual([{ price: 100_000n, quantity: 1000n, orders: 1 }]);
  });

  it('a trade left unfunded gives the offer its quantity back and cancels the rest of the bid', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await f.account('c1', 1_000_000n);
    await f.account('x', 0n);
    const bid = await f.market.submit('c1', order('bid', 1000, 100_000));
    // The bidder spends its money while the bid rests.
    await f.ledger.transfer({
      debitAccountId: 'c1',
      creditAccountId: 'x',
      amount: msat(1_000_000n),
      code: 'funding',
    }).durable;
    const offer = await f.market.submit('p1', order('offer', 400, 90_000));
    await settle(20);
    const t = await f.market.getTrade(offer.trades[0]!.id);
    expect(t.state).toBe('unfunded');
    expect(await f.market.getOrder(offer.order.id)).toMatchObject({ state: 'open', filledWh: 0n });
    expect(await f.market.getOrder(bid.order.id)).toMatchObject({ state: 'canceled' });
    const book = await f.market.book(product);
    expect([book.offers, book.bids]).toEqual([[{ price: 90_000n, quantity: 400n, orders: 1 }], []]);
  });

  it('self-trade prevention: an order that would match the account’s own resting order is canceled', async () => {
    const f = await fixture();
    await f.account('p1', 1_000_000n);
    await f.account('p2', 0n);
    await f.market.submit('p2', order('offer', 100, 40_000));
    const own = await f.market.submit('p1', order('offer', 100, 50_000));
    const wash = await f.market.submit('p1', order('bid', 300, 60_000));
    // p2's better offer fills; the bid stops at p1's own offer and its rest is canceled.
    expect(wash.trades.map((t) => [t.producerAccountId, t.quantityWh])).toEqual([['p2', 100n]]);
    expect(wash.order).toMatchObject({ state: 'canceled', filledWh: 100n });
    expect(await f.market.getOrder(own.order.id)).toMatchObject({ state: 'open', filledWh: 0n });
    const book = await f.market.book(product);
    expect([book.offers, book.bids, book.zoneLastPriceMsatPerKWh]).toEqual([
      [{ price: 50_000n, quantity: 100n, orders: 1 }],
      [],
      40_000n,
    ]);
  });
});

describe('energy market: funding', () => {
  it('a stream already stopped when funding returns closes the trade', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await f.account('c1', 1_000_000n);
    const create = f.streams.create.bind(f.streams);
    // The idempotent retry after a restart finds the stream a party stopped meanwhile.
    vi.spyOn(f.streams, 'create').mockImplementationOnce(async (...args) => {
      const s = await create(...args);
      return f.streams.stop(s.id);
    });
    await f.market.submit('p1', order('offer', 1000, 100_000));
    const { trades } = await f.market.submit('c1', order('bid', 1000, 100_000));
    await settle(20);
    expect((await f.market.getTrade(trades[0]!.id)).state).toBe('stopped');
  });
});
