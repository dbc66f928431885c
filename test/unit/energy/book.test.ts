import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderBook, type BookOrder, type Side } from '../../../src/energy/book.js';
import { Reference } from '../../support/energy-reference.js';

type Op = { kind: 'submit'; side: Side; price: number; quantity: number } | { kind: 'cancel'; pick: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('submit' as const),
      side: fc.constantFrom<Side>('offer', 'bid'),
      price: fc.integer({ min: 1, max: 12 }),
      quantity: fc.integer({ min: 1, max: 50 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }), weight: 1 },
);

describe('energy order book (price-time priority, partial fills)', () => {
  it('matches exactly as the reference model, never overfills, never crosses', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const book = new OrderBook();
        const ref = new Reference();
        const quantity = new Map<string, bigint>();
        const filled = new Map<string, bigint>();
        const ids: string[] = [];
        let seq = 0;
        for (const o of ops) {
          if (o.kind === 'cancel') {
            if (ids.length === 0) continue;
            const id = ids[o.pick % ids.length]!;
            expect(book.cancel(id) !== undefined).toBe(ref.cancel(id));
          } else {
            seq += 1;
            const id = `o${seq}`;
            ids.push(id);
            const q = BigInt(o.quantity);
            quantity.set(id, q);
            const order: BookOrder = { id, side: o.side, price: BigInt(o.price) * 1000n, remaining: q, seq };
            const fills = book.submit(order);
            expect(fills).toEqual(ref.submit({ id, side: o.side, price: order.price, quantity: q, seq }));
            for (const f of fills) {
              // The taker's price limit holds; each fill is at the maker's price.
              if (o.side === 'bid') expect(f.price <= order.price).toBe(true);
              else expect(f.price >= order.price).toBe(true);
              for (const x of [f.takerId, f.makerId]) filled.set(x, (filled.get(x) ?? 0n) + f.quantity);
            }
          }
          for (const [id, q] of filled) expect(q <= quantity.get(id)!).toBe(true);
          const bid = book.bestBid();
          const offer = book.bestOffer();
          if (bid !== undefined && offer !== undefined) expect(bid < offer).toBe(true);
          for (const side of ['offer', 'bid'] as const)
            expect(book.resting(side).map((r) => ({ id: r.id, remaining: r.remaining }))).toEqual(
              ref.resting(side),
            );
        }
        // What is filled plus what rests is each order's quantity (canceled ones excepted).
        for (const side of ['offer', 'bid'] as const)
          for (const r of book.resting(side))
            expect(r.remaining + (filled.get(r.id) ?? 0n)).toBe(quantity.get(r.id));
      }),
      { numRuns: 300 },
    );
  });

  it('fills partially at the makers’ prices, best price then oldest first', () => {
    const book = new OrderBook();
    book.submit({ id: 'a', side: 'offer', price: 100n, remaining: 5n, seq: 1 });
    book.submit({ id: 'b', side: 'offer', price: 90n, remaining: 5n, seq: 2 });
    book.submit({ id: 'c', side: 'offer', price: 90n, remaining: 5n, seq: 3 });
    const fills = book.submit({ id: 'x', side: 'bid', price: 100n, remaining: 12n, seq: 4 });
    expect(fills.map((f) => [f.makerId, f.quantity, f.price])).toEqual([
      ['b', 5n, 90n],
      ['c', 5n, 90n],
      ['a', 2n, 100n],
    ]);
    expect(book.depth('offer', 5)).toEqual([{ price: 100n, quantity: 3n, orders: 1 }]);
    expect(book.bestBid()).toBeUndefined();
  });

  it('self-trade prevention: an order stops at its owner’s resting order and does not rest', () => {
    const book = new OrderBook();
    book.submit({ id: 'a', side: 'offer', price: 90n, remaining: 5n, seq: 1, owner: 'p2' });
    book.submit({ id: 'b', side: 'offer', price: 95n, remaining: 5n, seq: 2, owner: 'p1' });
    book.submit({ id: 'c', side: 'offer', price: 99n, remaining: 5n, seq: 3, owner: 'p3' });
    const x = { id: 'x', side: 'bid' as const, price: 100n, remaining: 12n, seq: 4, owner: 'p1' };
    expect(book.submit(x).map((f) => [f.makerId, f.quantity])).toEqual([['a', 5n]]);
    expect([x.remaining, book.has('x'), book.bestBid()]).toEqual([7n, false, undefined]);
    expect(book.depth('offer', 5).map((l) => l.quantity)).toEqual([5n, 5n]);
  });

  it('an order put back (cancel, then submitted again) keeps its time priority', () => {
    const book = new OrderBook();
    book.submit({ id: 'a', side: 'offer', price: 90n, remaining: 5n, seq: 1 });
    book.submit({ id: 'b', side: 'offer', price: 90n, remaining: 5n, seq: 2 });
    book.cancel('a');
    book.submit({ id: 'a', side: 'offer', price: 90n, remaining: 8n, seq: 1 });
    expect(book.resting('offer').map((o) => o.id)).toEqual(['a', 'b']);
  });

  it('refuses empty orders and an id already resting', () => {
    const book = new OrderBook();
    expect(() => book.submit({ id: 'a', side: 'bid', price: 0n, remaining: 1n, seq: 1 })).toThrow(RangeError);
    book.submit({ id: 'a', side: 'bid', price: 5n, remaining: 1n, seq: 1 });
    expect(() => book.submit({ id: 'a', side: 'bid', price: 5n, remaining: 1n, seq: 2 })).toThrow(RangeError);
  });
});
