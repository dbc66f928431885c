import { describe, expect, it } from 'vitest';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { settle } from '../streams/support.js';
import { fixture, order, product } from './support.js';

describe('energy market', () => {
  it('two producers and two consumers trade with a partial fill; settlement pays price × delivered Wh exactly', async () => {
    const f = await fixture();
    for (const id of ['p1', 'p2']) await f.account(id, 0n);
    await f.account('c1', 1_000_000n);
    await f.account('c2', 1_000_000n);
    await f.market.submit('p1', order('offer', 600, 50_000));
    await f.market.submit('p2', order('offer', 500, 40_001));
    const first = await f.market.submit('c1', order('bid', 700, 60_000));
    // Best price first: all of p2 at 40,001, then 200 Wh of p1 at 50,000 (the makers' prices).
    expect(first.trades.map((t) => [t.producerAccountId, t.quantityWh, t.priceMsatPerKWh])).toEqual([
      ['p2', 500n, 40_001n],
      ['p1', 200n, 50_000n],
    ]);
    expect(first.order.state).toBe('filled');
    const second = await f.market.submit('c2', order('bid', 300, 55_000));
    expect(second.trades.map((t) => [t.producerAccountId, t.quantityWh])).toEqual([['p1', 300n]]);
    const book = await f.market.book(product);
    expect(book.offers).toEqual([{ price: 50_000n, quantity: 100n, orders: 1 }]);
    expect(book.bids).toEqual([]);
    expect(book.lastPriceMsatPerKWh).toBe(50_000n);
    await settle(20);

    // p2's meter reports 333 + 167 Wh: 500 × 40,001 / 1000 = 20,000.5 msat; the half msat never
    // becomes a payment, and the first reading's third of a msat is carried to the second.
    const t = first.trades[0]!;
    let after = await f.market.report(t.id, 'producer', 0, 333n);
    expect(after.billedMsat).toBe(13_320n); // floor(13,320.333)
    after = await f.market.report(t.id, 'producer', 1, 167n);
    expect(after.settledWh).toBe(500n);
    expect(after.billedMsat).toBe(20_000n);
    await f.run();
    const done = await f.market.getTrade(t.id);
    expect(done.state).toBe('completed');
    expect(done.paidMsat).toBe(20_000n);
    expect(f.balance('p2')).toBe(20_000n);
    // A repeated reading is answered again; another value for a reported interval is refused.
    await expect(f.market.report(t.id, 'producer', 1, 167n)).resolves.toMatchObject({ state: 'completed' });
    await expect(f.market.report(t.id, 'producer', 0, 5n)).rejects.toMatchObject({
      code: 'ENERGY_READING_CONFLICT',
    });

    const tape = await f.market.tape();
    expect(tape.trades).toHaveLength(3);
    const history = await f.market.listTrades('p1');
    expect(history.trades.map((x) => x.consumerAccountId).sort()).toEqual(['c1', 'c2']);
  });

  it('stops the stream when the consumer’s prepaid credit lapses', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await f.account('c2', 10_000n); // 200 Wh at 50,000 msat/kWh
    await f.market.submit('p1', order('offer', 300, 50_000));
    const { trades } = await f.market.submit('c2', order('bid', 300, 50_000));
    await settle(20);
    const t = trades[0]!;
    expect((await f.market.getTrade(t.id)).state).toBe('delivering');
    await f.market.report(t.id, 'producer', 0, 150n);
    await f.run();
    await f.market.report(t.id, 'producer', 1, 100n);
    await f.run(3);
    const lapsed = await f.market.getTrade(t.id);
    expect(lapsed.state).toBe('lapsed');
    expect(lapsed.paidMsat).toBe(10_000n);
    expect(f.balance('p1')).toBe(10_000n);
    expect(f.balance('c2')).toBe(0n);
    await expect(f.market.report(t.id, 'producer', 2, 10n)).rejects.toMatchObject({
      code: 'ENERGY_TRADE_CLOSED',
    });
  });

  it('pays an interval once both meters agree within tolerance, and disputes a mismatch without paying it', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await f.account('c3', 1_000_000n);
    await f.market.submit('p1', order('offer', 1000, 10_000));
    const { trades } = await f.market.submit(
      'c3',
      order('bid', 1000, 10_000, { meterDeviceId: 'ab'.repeat(32) }),
    );
    await settle(20);
    const t = trades[0]!;
    // The producer's reading waits for the consumer's.
    expect((await f.market.report(t.id, 'producer', 0, 100n)).settledWh).toBe(0n);
    expect((await f.market.report(t.id, 'consumer', 0, 99n)).settledWh).toBe(99n); // within 2 %: the lower reading
    await f.market.report(t.id, 'consumer', 1, 80n);
    const disputed = await f.market.report(t.id, 'producer', 1, 100n);
    expect(disputed.state).toBe('disputed');
    expect(disputed.closeCode).toBe('DELIVERY_MISMATCH');
    expect(disputed.settledWh).toBe(99n);
    await f.run();
    expect(f.balance('p1')).toBe(990n);
    expect((await f.market.getTrade(t.id)).paidMsat).toBe(990n);
  });

  it('refuses bad orders with stable codes and cancels open ones', async () => {
    const f = await fixture();
    await f.account('p1', 0n);
    await expect(
      f.market.submit('p1', { ...order('offer', 10, 1), windowStart: product.windowStart + 1 }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(
      f.market.submit('p1', order('offer', 10, 1, { meterDeviceId: 'ab'.repeat(32) })),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const { order: o } = await f.market.submit('p1', order('offer', 10, 1000));
    expect((await f.market.cancel('p1', o.id)).state).toBe('canceled');
    await expect(f.market.cancel('p1', o.id)).rejects.toMatchObject({ code: 'ENERGY_ORDER_CLOSED' });
    expect((await f.market.book(product)).offers).toEqual([]);
  });
});

describe('energy market restart', () => {
  it('rebuilds the books from the open orders in arrival order', async () => {
    const store = new MemoryLedgerStore();
    const open = () => fixture({ prefundWh: 1000 }, store);
    const a = await open();
    for (const id of ['p1', 'p2', 'c1']) await a.account(id, id === 'c1' ? 1_000_000n : 0n);
    const first = await a.market.submit('p1', order('offer', 100, 50_000));
    await a.market.submit('p2', order('offer', 100, 50_000));
    await a.market.submit('p1', order('offer', 50, 45_000));
    await a.close();
    const b = await open();
    expect((await b.market.book(product)).offers).toEqual([
      { price: 45_000n, quantity: 50n, orders: 1 },
      { price: 50_000n, quantity: 200n, orders: 2 },
    ]);
    // Time priority survived: p1's 50,000 offer (older) fills before p2's.
    const { trades } = await b.market.submit('c1', order('bid', 120, 50_000));
    expect(trades.map((t) => [t.offerId, t.quantityWh])).toEqual([
      [expect.any(String), 50n],
      [first.order.id, 70n],
    ]);
  });
});
