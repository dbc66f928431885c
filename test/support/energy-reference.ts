import type { Fill, Side } from '../../src/energy/book.js';

/**
 * The reference model: every resting order in one list; an incoming order takes the crossing
 * orders of the other side sorted by (price best first, then arrival), as plain code says it.
 */
export class Reference {
  orders: { id: string; side: Side; price: bigint; remaining: bigint; seq: number }[] = [];

  submit(o: { id: string; side: Side; price: bigint; quantity: bigint; seq: number }): Fill[] {
    const crossing = this.orders
      .filter((r) => r.side !== o.side && (o.side === 'bid' ? r.price <= o.price : r.price >= o.price))
      .sort((a, b) =>
        a.price !== b.price
          ? o.side === 'bid'
            ? a.price < b.price
              ? -1
              : 1
            : a.price > b.price
              ? -1
              : 1
          : a.seq - b.seq,
      );
    let left = o.quantity;
    const fills: Fill[] = [];
    for (const r of crossing) {
      if (left === 0n) break;
      const q = r.remaining < left ? r.remaining : left;
      r.remaining -= q;
      left -= q;
      fills.push({ takerId: o.id, makerId: r.id, takerSide: o.side, quantity: q, price: r.price });
    }
    this.orders = this.orders.filter((r) => r.remaining > 0n);
    if (left > 0n) this.orders.push({ id: o.id, side: o.side, price: o.price, remaining: left, seq: o.seq });
    return fills;
  }

  cancel(id: string): boolean {
    const before = this.orders.length;
    this.orders = this.orders.filter((r) => r.id !== id);
    return this.orders.length < before;
  }

  resting(side: Side): { id: string; remaining: bigint }[] {
    return this.orders
      .filter((r) => r.side === side)
      .sort((a, b) =>
        a.price !== b.price
          ? side === 'offer'
            ? a.price < b.price
              ? -1
              : 1
            : a.price > b.price
              ? -1
              : 1
          : a.seq - b.seq,
      )
      .map((r) => ({ id: r.id, remaining: r.remaining }));
  }
}
