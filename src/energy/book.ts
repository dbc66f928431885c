/**
 * The energy market's matching engine for one product (a grid zone and a delivery window): a
 * continuous double auction with price-time priority and partial fills. Pure and synchronous: no
 * I/O, no clock, no randomness; amounts are exact integers (bigint Wh, bigint msat per kWh).
 *
 * An incoming order (the taker) is matched at once against the resting orders of the other side
 * (the makers) that it crosses, best price first and, at one price, oldest first; each fill is at
 * the maker's price. What is left rests in the book. So the book never crosses: after every call
 * the best bid is below the best offer.
 *
 * Self-trade prevention (cancel newest): an incoming order that reaches a resting order of its own
 * owner stops matching there, and its rest is not rested (the caller cancels it).
 */

export type Side = 'offer' | 'bid';

export interface BookOrder {
  readonly id: string;
  readonly side: Side;
  /** msat per kWh, > 0. */
  readonly price: bigint;
  /** What is still open, Wh. */
  remaining: bigint;
  /** Arrival order: lower is older (time priority). */
  readonly seq: number;
  /** Who placed it: an order never matches one of the same owner. */
  readonly owner?: string;
}

export interface Fill {
  /** The incoming order. */
  readonly takerId: string;
  /** The resting order it matched. */
  readonly makerId: string;
  readonly takerSide: Side;
  readonly quantity: bigint;
  /** The maker's price. */
  readonly price: bigint;
}

/** One price of one side of the book, its orders oldest first (`head` skips the filled ones). */
interface Level {
  readonly price: bigint;
  readonly orders: BookOrder[];
  head: number;
  /** The sum of the open orders' remaining quantity. */
  quantity: bigint;
  /** Open orders at this level. */
  live: number;
}

/** One side: levels sorted best first (offers ascending, bids descending). */
class BookSide {
  readonly levels: Level[] = [];

  constructor(private readonly side: Side) {}

  /** True when `a` is a better price than `b` for this side. */
  private better(a: bigint, b: bigint): boolean {
    return this.side === 'offer' ? a < b : a > b;
  }

  /** The index of the level with this price, or where it would be inserted. */
  private find(price: bigint): number {
    let lo = 0;
    let hi = this.levels.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.better(this.levels[mid]!.price, price)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(o: BookOrder): void {
    const i = this.find(o.price);
    let level = this.levels[i];
    if (level === undefined || level.price !== o.price) {
      level = { price: o.price, orders: [], head: 0, quantity: 0n, live: 0 };
      this.levels.splice(i, 0, level);
    }
    // In time priority (an order put back keeps its place).
    let at = level.orders.length;
    while (at > level.head && level.orders[at - 1]!.seq > o.seq) at -= 1;
    level.orders.splice(at, 0, o);
    level.quantity += o.remaining;
    level.live += 1;
  }

  /** Takes an order out (cancel, expiry). */
  remove(o: BookOrder): void {
    const i = this.find(o.price);
    const level = this.levels[i];
    if (level === undefined || level.price !== o.price) return;
    const at = level.orders.indexOf(o, level.head);
    if (at < 0) return;
    level.orders.splice(at, 1);
    level.quantity -= o.remaining;
    level.live -= 1;
    if (level.live === 0) this.levels.splice(i, 1);
  }

  best(): Level | undefined {
    return this.levels[0];
  }

  /** Drops the best level once nothing is open in it. */
  dropBestIfEmpty(): void {
    const level = this.levels[0];
    if (level !== undefined && level.live === 0) this.levels.shift();
  }
}

export interface LevelView {
  price: bigint;
  quantity: bigint;
  orders: number;
}

export class OrderBook {
  private readonly sides = { offer: new BookSide('offer'), bid: new BookSide('bid') };
  private readonly byId = new Map<string, BookOrder>();

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Matches an incoming order against the book and rests what is left. `order.remaining` is its
   * quantity; it is decreased by what fills. Returns the fills, best price first. When it reaches
   * an order of its own owner it stops there and its rest is not rested (`has(order.id)` is false).
   */
  submit(order: BookOrder): Fill[] {
    if (order.remaining <= 0n || order.price <= 0n)
      throw new RangeError('quantity and price must be positive');
    if (this.byId.has(order.id)) throw new RangeError(`order ${order.id} is already in the book`);
    const fills: Fill[] = [];
    const other = this.sides[order.side === 'bid' ? 'offer' : 'bid'];
    let self = false;
    while (!self) {
      if (order.remaining === 0n) break;
      const level = other.best();
      if (level === undefined) break;
      const crosses = order.side === 'bid' ? level.price <= order.price : level.price >= order.price;
      if (!crosses) break;
      while (order.remaining > 0n && level.head < level.orders.length) {
        const maker = level.orders[level.head]!;
        if (order.owner !== undefined && maker.owner === order.owner) {
          self = true;
          break;
        }
        const q = maker.remaining < order.remaining ? maker.remaining : order.remaining;
        maker.remaining -= q;
        order.remaining -= q;
        level.quantity -= q;
        fills.push({
          takerId: order.id,
          makerId: maker.id,
          takerSide: order.side,
          quantity: q,
          price: level.price,
        });
        if (maker.remaining === 0n) {
          level.head += 1;
          level.live -= 1;
          this.byId.delete(maker.id);
        }
      }
      if (level.head > 64 && level.head * 2 > level.orders.length) {
        level.orders.splice(0, level.head);
        level.head = 0;
      }
      other.dropBestIfEmpty();
    }
    if (order.remaining > 0n && !self) {
      this.sides[order.side].add(order);
      this.byId.set(order.id, order);
    }
    return fills;
  }

  /** Takes a resting order out of the book; false when it is not there (filled or unknown). */
  cancel(id: string): BookOrder | undefined {
    const o = this.byId.get(id);
    if (o === undefined) return undefined;
    this.sides[o.side].remove(o);
    this.byId.delete(id);
    return o;
  }

  /** Puts a resting order back as it was (loading the open orders at start), without matching. */
  restore(order: BookOrder): void {
    if (order.remaining <= 0n || this.byId.has(order.id)) return;
    this.sides[order.side].add(order);
    this.byId.set(order.id, order);
  }

  bestBid(): bigint | undefined {
    return this.sides.bid.best()?.price;
  }

  bestOffer(): bigint | undefined {
    return this.sides.offer.best()?.price;
  }

  /** The aggregated levels of a side, best first, at most `depth` of them. */
  depth(side: Side, depth: number): LevelView[] {
    return this.sides[side].levels
      .slice(0, depth)
      .map((l) => ({ price: l.price, quantity: l.quantity, orders: l.live }));
  }

  /** The resting orders of a side in priority order (for tests and the reference model). */
  resting(side: Side): BookOrder[] {
    return this.sides[side].levels.flatMap((l) => l.orders.slice(l.head).filter((o) => o.remaining > 0n));
  }
}
