import { randomUUID } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import { KeyedQueue } from '../domain/keyed-queue.js';
import type { Logger } from '../domain/logger.js';
import { msat } from '../domain/msat.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { IndexedItems } from '../ledger/record-index.js';
import { availableOf } from '../ledger/types.js';
import type { EventBus } from '../payments/events.js';
import type { FeatureEvent } from '../payments/types.js';
import type { PublicStream, StreamsService } from '../streams/index.js';
import { OrderBook, type Fill, type LevelView } from './book.js';
import { orderIndex, tradeIndex } from './codec.js';
import { EnergyError, EnergyErrorCode, invalid } from './errors.js';
import {
  isFinalTrade,
  productKey,
  type EnergyOrder,
  type EnergyTrade,
  type NewOrder,
  type Product,
  type Reading,
} from './types.js';

export interface EnergyOptions {
  /** Delivery windows are whole slots of this many seconds (default 900: 15-minute products). */
  slotSeconds?: number;
  /** Two meters agree when they differ by at most this many basis points of the larger reading (default 200). */
  toleranceBps?: number;
  /** The consumer prepays this many Wh of a trade at a time (the stream's chunk; default 1000). */
  prefundWh?: number;
  /** Open orders one account may have (default 1000). */
  maxOpenOrdersPerAccount?: number;
  /** Readings of one side waiting for the other meter, per trade (default 32). */
  maxPendingReadings?: number;
  /** How often ended windows are swept (default 10 s). */
  sweepMs?: number;
  /**
   * Readings are taken this long after a delivery window ends; then the sweep closes its trades
   * still delivering (`stopped`, closeCode `DELIVERY_WINDOW_ENDED`; default 3600).
   */
  graceSeconds?: number;
}

export interface EnergyDeps {
  ledger: Ledger;
  streams: StreamsService;
  bus: EventBus;
  publish: (accountId: string, event: FeatureEvent) => void;
  /** Whether a device is registered, active and belongs to the account. */
  deviceOf: (deviceId: string) => { accountId: string; active: boolean } | undefined;
  log: Logger;
  now?: () => number;
  options?: EnergyOptions;
}

/** Who reports a reading: the producer's meter, or the consumer's. */
export type Reporter = 'producer' | 'consumer';

export interface BookView extends Product {
  bids: LevelView[];
  offers: LevelView[];
  lastPriceMsatPerKWh?: bigint;
  lastTradeAt?: number;
  /** The zone's last trade price over every window (price discovery across products). */
  zoneLastPriceMsatPerKWh?: bigint;
}

/** A trade as the public tape shows it: no accounts. */
export interface TapeEntry extends Product {
  id: string;
  priceMsatPerKWh: bigint;
  quantityWh: bigint;
  takerSide: 'offer' | 'bid';
  createdAt: number;
}

interface ProductState {
  readonly product: Product;
  readonly book: OrderBook;
}

const ZONE = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_WH = 10n ** 12n;
const MAX_PRICE = 10n ** 15n;
const lastKey = (zone: string): string => `elast!${zone}`;
/** A product's last trade (zones have no `|`, so the key is the product's). */
const productLastKey = (p: Product): string => `eplast!${productKey(p)}`;
const streamMemo = (tradeId: string): string => `energy trade ${tradeId}`;

/**
 * The energy market: producers' offers and consumers' bids per product (zone and delivery window)
 * in continuous double auctions (`OrderBook`), and the trades they make, each settled by a metered
 * stream from the consumer to the producer that the producer's meter readings drive (verified
 * against the consumer's meter where it has one). Open orders and delivering trades are in memory;
 * the rest is on disk, read a page at a time.
 */
export class EnergyMarket {
  private readonly products = new Map<string, ProductState>();
  private readonly orders: IndexedItems<EnergyOrder>;
  private readonly trades: IndexedItems<EnergyTrade>;
  /** Delivering trades by their stream. */
  private readonly byStream = new Map<string, string>();
  private readonly openPerAccount = new Map<string, number>();
  private readonly queue = new KeyedQueue();
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly slotMs: number;
  private readonly toleranceBps: bigint;
  private readonly prefundWh: bigint;
  private readonly maxOpen: number;
  private readonly maxPending: number;
  private readonly graceMs: number;
  private unguard: (() => void) | undefined;

  constructor(private readonly deps: EnergyDeps) {
    const o = deps.options ?? {};
    this.orders = new IndexedItems(orderIndex, deps.ledger);
    this.trades = new IndexedItems(tradeIndex, deps.ledger);
    this.slotMs = (o.slotSeconds ?? 900) * 1000;
    this.toleranceBps = BigInt(o.toleranceBps ?? 200);
    this.prefundWh = BigInt(o.prefundWh ?? 1000);
    this.maxOpen = o.maxOpenOrdersPerAccount ?? 1000;
    this.maxPending = o.maxPendingReadings ?? 32;
    this.graceMs = (o.graceSeconds ?? 3600) * 1000;
    if (!Number.isSafeInteger(this.slotMs) || this.slotMs < 1000)
      throw invalid('slotSeconds must be a positive integer');
    if (this.toleranceBps < 0n || this.toleranceBps > 10_000n)
      throw invalid('toleranceBps must be 0 to 10000');
    if (this.prefundWh < 1n) throw invalid('prefundWh must be positive');
    if (!Number.isSafeInteger(this.graceMs) || this.graceMs < 0)
      throw invalid('graceSeconds must be a non-negative integer');
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Loads the open orders into their books (in arrival order) and resumes the trades not final. */
  async start(): Promise<void> {
    await this.load();
    await this.startDuties();
  }

  /** The open orders in their books and the trades not final: what every instance needs to serve. */
  async load(): Promise<void> {
    await this.orders.load();
    await this.trades.load();
    const open = [...this.orders.values()].sort((a, b) => a.seq - b.seq);
    for (const o of open) {
      this.seq = Math.max(this.seq, o.seq);
      this.productOf(o).book.restore({
        id: o.id,
        side: o.side,
        price: o.priceMsatPerKWh,
        remaining: o.quantityWh - o.filledWh,
        seq: o.seq,
        owner: o.accountId,
      });
      this.count(o.accountId, 1);
    }
    this.unsubscribe = this.deps.bus.subscribeAll(
      (_account, event) => {
        if (event.type !== 'stream') return;
        const s = event['stream'] as PublicStream;
        const tradeId = this.byStream.get(s.id);
        if (tradeId === undefined) return;
        if (s.state === 'stopped')
          void this.queue.run(tradeId, () => this.onStreamStopped(tradeId, s)).catch(this.failed(tradeId));
        // Resumed (a stream paused before pausing was refused): what was billed meanwhile is told.
        else if (s.state === 'active')
          void this.queue.run(tradeId, () => this.catchUp(tradeId)).catch(this.failed(tradeId));
      },
      ['stream'],
    );
    this.unguard = this.deps.streams.refusePause((s) => this.pauseRefusal(s));
    for (const t of this.trades.values()) if (t.streamId !== undefined) this.byStream.set(t.streamId, t.id);
  }

  /**
   * The leader's part: resumes the trades not final (funding matched ones, catching up or closing
   * those whose stream moved meanwhile) and sweeps expired orders and trades every `sweepMs`.
   */
  async startDuties(): Promise<void> {
    for (const t of [...this.trades.values()]) {
      if (t.state === 'matched') void this.queue.run(t.id, () => this.fund(t)).catch(this.failed(t.id));
      else if (t.streamId !== undefined) {
        const s = await this.deps.streams.get(t.streamId).catch(() => undefined);
        if (s?.state === 'stopped') await this.queue.run(t.id, () => this.onStreamStopped(t.id, s));
        // A crash between the trade's write and the stream's leaves billed msat not reported.
        else if (s !== undefined)
          await this.queue.run(t.id, () => this.catchUp(t.id)).catch(this.failed(t.id));
      }
    }
    await this.sweep();
    this.stopDuties();
    this.timer = setInterval(
      () => void this.sweep().catch(this.failed('sweep')),
      this.deps.options?.sweepMs ?? 10_000,
    );
    this.timer.unref();
  }

  stopDuties(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.unsubscribe?.();
    this.unguard?.();
    this.stopDuties();
  }

  private failed(what: string): (err: unknown) => void {
    return (err) => this.deps.log.error({ err, what }, 'energy market: an update failed');
  }

  // ---- orders -------------------------------------------------------------------------------

  /**
   * Posts an offer or a bid: it is matched at once against the other side (price-time priority,
   * partial fills at the resting orders' prices) and what is left rests in the book. Each fill is a
   * trade, whose settlement (the consumer's metered stream) starts once the trade is durable.
   */
  async submit(
    accountId: string,
    input: NewOrder,
    idempotencyKey?: string,
  ): Promise<{ order: EnergyOrder; trades: EnergyTrade[] }> {
    this.validate(input);
    return this.deps.ledger.idempotent(
      { accountId, key: idempotencyKey, operation: 'energy-order', request: input },
      (records) => this.submitOnce(accountId, input, records),
      async (id) => ({ order: await this.getOrder(id), trades: [] }),
    );
  }

  private validate(input: NewOrder): void {
    if (input.side !== 'offer' && input.side !== 'bid') throw invalid('side must be offer or bid');
    if (!ZONE.test(input.zone)) throw invalid('zone must be 1 to 64 letters, digits or _.:-');
    const { windowStart: s, windowEnd: e } = input;
    if (
      !Number.isSafeInteger(s) ||
      !Number.isSafeInteger(e) ||
      s % this.slotMs !== 0 ||
      e % this.slotMs !== 0 ||
      e <= s
    )
      throw invalid(
        `the delivery window must be whole slots of ${this.slotMs / 1000} s (ms multiples of ${this.slotMs})`,
      );
    if (e - s > 366 * 86_400_000) throw invalid('the delivery window is at most a year');
    if (input.quantityWh < 1n || input.quantityWh > MAX_WH) throw invalid('quantityWh must be 1 to 10^12');
    if (input.priceMsatPerKWh < 1n || input.priceMsatPerKWh > MAX_PRICE)
      throw invalid('priceMsatPerKWh must be 1 to 10^15');
    if (input.meterDeviceId !== undefined && input.side !== 'bid')
      throw invalid('meterDeviceId belongs to bids');
  }

  private async submitOnce(
    accountId: string,
    input: NewOrder,
    idem: (id: string) => SideRecords,
  ): Promise<{ order: EnergyOrder; trades: EnergyTrade[] }> {
    const account = await this.deps.ledger.requireAccount(accountId);
    if (account.frozen) throw new AppError('ACCOUNT_FROZEN', `account ${accountId} is frozen`, 409);
    if (input.meterDeviceId !== undefined) {
      const d = this.deps.deviceOf(input.meterDeviceId);
      if (!d || !d.active || d.accountId !== accountId)
        throw invalid('meterDeviceId must be an active device of this account');
    }
    const now = this.now();
    if (input.windowEnd <= now) throw invalid('the delivery window has ended');
    if ((this.openPerAccount.get(accountId) ?? 0) >= this.maxOpen)
      throw new EnergyError(
        EnergyErrorCode.TOO_MANY_OPEN_ORDERS,
        `at most ${this.maxOpen} open orders per account`,
      );
    // A bid needs money: the first prepaid chunk of what it may buy, at its limit price.
    const chunk = input.side === 'bid' ? this.firstChunk(input.quantityWh, input.priceMsatPerKWh) : 0n;
    if (availableOf(account) < chunk)
      throw new EnergyError(
        EnergyErrorCode.INSUFFICIENT_FUNDS,
        `a bid needs ${chunk} msat available (its first prepaid chunk)`,
      );
    // From here to the write, one synchronous step: the book and the records agree.
    const order: EnergyOrder = {
      id: randomUUID(),
      accountId,
      side: input.side,
      zone: input.zone,
      windowStart: input.windowStart,
      windowEnd: input.windowEnd,
      priceMsatPerKWh: input.priceMsatPerKWh,
      quantityWh: input.quantityWh,
      filledWh: 0n,
      ...(input.meterDeviceId !== undefined ? { meterDeviceId: input.meterDeviceId } : {}),
      state: 'open',
      seq: ++this.seq,
      createdAt: now,
      updatedAt: now,
    };
    const { records, trades } = this.match(order, now);
    if (order.state === 'open') this.count(accountId, 1);
    records.push(...idem(order.id));
    await this.deps.ledger.putRecords(records);
    this.published(order, trades);
    return { order: { ...order }, trades: trades.map((t) => ({ ...t })) };
  }

  /**
   * Matches an order (new, or put back) with what it crosses, one synchronous step: the makers
   * filled, the trades made, what is left rests, or is canceled when it reached an order of its
   * own account (self-trade prevention). Returns the records to write together.
   */
  private match(order: EnergyOrder, now: number): { records: SideRecords; trades: EnergyTrade[] } {
    const state = this.productOf(order);
    const entry = {
      id: order.id,
      side: order.side,
      price: order.priceMsatPerKWh,
      remaining: order.quantityWh - order.filledWh,
      seq: order.seq,
      owner: order.accountId,
    };
    const fills = state.book.submit(entry);
    const records: SideRecords = [];
    const trades: EnergyTrade[] = [];
    for (const f of fills) {
      const maker = this.orders.openItem(f.makerId)!;
      this.fill(maker, f.quantity, now);
      records.push(...orderIndex.records(maker));
      this.orders.remember(maker);
      const t = this.trade(order, maker, f, now);
      trades.push(t);
      this.trades.remember(t);
      records.push(...tradeIndex.records(t));
    }
    order.filledWh = order.quantityWh - entry.remaining;
    order.updatedAt = now;
    order.state = entry.remaining === 0n ? 'filled' : state.book.has(order.id) ? 'open' : 'canceled';
    this.orders.remember(order);
    records.push(...orderIndex.records(order));
    this.forgetIfEmpty(state);
    const last = trades[trades.length - 1];
    if (last) {
      const value = JSON.stringify({ price: last.priceMsatPerKWh.toString(), at: now });
      records.push({ key: lastKey(order.zone), value }, { key: productLastKey(order), value });
    }
    return { records, trades };
  }

  private published(order: EnergyOrder, trades: EnergyTrade[]): void {
    this.publishOrder(order);
    for (const t of trades) {
      this.publishTrade(t);
      void this.queue.run(t.id, () => this.fund(t)).catch(this.failed(t.id));
    }
  }

  /** The first prepaid chunk of a trade: `prefundWh` worth, at least 1 msat, at most the total. */
  private firstChunk(quantityWh: bigint, priceMsatPerKWh: bigint): bigint {
    const total = (quantityWh * priceMsatPerKWh) / 1000n;
    const chunk = (this.prefundWh * priceMsatPerKWh) / 1000n;
    return chunk < 1n ? 1n : chunk > total ? total : chunk;
  }

  private fill(o: EnergyOrder, q: bigint, now: number): void {
    o.filledWh += q;
    o.updatedAt = now;
    if (o.filledWh === o.quantityWh) {
      o.state = 'filled';
      this.count(o.accountId, -1);
    }
  }

  private trade(taker: EnergyOrder, maker: EnergyOrder, f: Fill, now: number): EnergyTrade {
    const offer = taker.side === 'offer' ? taker : maker;
    const bid = taker.side === 'bid' ? taker : maker;
    return {
      id: randomUUID(),
      zone: taker.zone,
      windowStart: taker.windowStart,
      windowEnd: taker.windowEnd,
      offerId: offer.id,
      bidId: bid.id,
      producerAccountId: offer.accountId,
      consumerAccountId: bid.accountId,
      ...(bid.meterDeviceId !== undefined ? { consumerMeterId: bid.meterDeviceId } : {}),
      takerSide: taker.side,
      priceMsatPerKWh: msat(f.price),
      quantityWh: f.quantity,
      state: 'matched',
      producedWh: 0n,
      consumedWh: 0n,
      settledWh: 0n,
      billedMsat: msat(0n),
      paidMsat: msat(0n),
      producerInterval: -1,
      consumerInterval: -1,
      pendingProducer: [],
      pendingConsumer: [],
      createdAt: now,
      updatedAt: now,
    };
  }

  /** Cancels an open order of the account (what filled stays traded). */
  async cancel(accountId: string, orderId: string): Promise<EnergyOrder> {
    const o = await this.orders.find(orderId);
    if (!o || o.accountId !== accountId)
      throw new EnergyError(EnergyErrorCode.ORDER_NOT_FOUND, `no order ${orderId}`);
    if (o.state !== 'open')
      throw new EnergyError(EnergyErrorCode.ORDER_CLOSED, `order ${orderId} is ${o.state}`);
    this.close(o, 'canceled');
    await this.deps.ledger.putRecords(orderIndex.records(o));
    this.publishOrder(o);
    return { ...o };
  }

  private close(o: EnergyOrder, state: 'canceled' | 'expired'): void {
    const product = this.products.get(productKey(o));
    if (product) {
      product.book.cancel(o.id);
      this.forgetIfEmpty(product);
    }
    o.state = state;
    o.updatedAt = this.now();
    this.count(o.accountId, -1);
    this.orders.remember(o);
  }

  /**
   * Expires the open orders whose window ended, and closes the trades whose window ended more
   * than `graceSeconds` ago: what was billed is paid, the stream stopped, the chunk released.
   */
  async sweep(): Promise<void> {
    const now = this.now();
    const records: SideRecords = [];
    const expired: EnergyOrder[] = [];
    for (const o of [...this.orders.values()]) {
      if (o.state !== 'open' || o.windowEnd > now) continue;
      this.close(o, 'expired');
      records.push(...orderIndex.records(o));
      expired.push(o);
    }
    if (records.length > 0) await this.deps.ledger.putRecords(records);
    for (const o of expired) this.publishOrder(o);
    for (const t of [...this.trades.values()])
      if (!isFinalTrade(t) && t.windowEnd + this.graceMs <= now)
        await this.queue.run(t.id, () => this.windowEnded(t.id)).catch(this.failed(t.id));
  }

  /** Closes a trade whose delivery window (and grace) is over; a `matched` one is funded first. */
  private async windowEnded(tradeId: string): Promise<void> {
    const t = this.trades.openItem(tradeId);
    if (!t) return;
    if (t.state === 'matched') await this.fund(t);
    if (t.state !== 'delivering') return;
    t.closeCode = 'DELIVERY_WINDOW_ENDED';
    t.closeMessage = 'the delivery window and its grace period are over';
    await this.finish(t, 'stopped');
  }

  async getOrder(id: string): Promise<EnergyOrder> {
    const o = await this.orders.peek(id);
    if (!o) throw new EnergyError(EnergyErrorCode.ORDER_NOT_FOUND, `no order ${id}`);
    return { ...o };
  }

  /** The account's orders, newest first, a page at a time from disk. */
  async listOrders(
    accountId: string,
    page: { limit?: number; before?: string } = {},
  ): Promise<{ orders: EnergyOrder[]; next?: string }> {
    const { entries, next } = await orderIndex.page(
      this.deps.ledger,
      accountId,
      clampLimit(page.limit),
      page.before,
    );
    const orders: EnergyOrder[] = [];
    for (const { id } of entries) {
      const o = await this.orders.peek(id);
      if (o) orders.push({ ...o });
    }
    return { orders, ...(next ? { next } : {}) };
  }

  /** The order book of a product (aggregated levels, best first) and its last price. */
  async book(product: Product, depth = 20): Promise<BookView> {
    const p = this.products.get(productKey(product));
    const parse = (raw: string | undefined) =>
      raw === undefined ? undefined : (JSON.parse(raw) as { price: string; at: number });
    const last = parse(await this.deps.ledger.getRecord(productLastKey(product)));
    const zonePrice = parse(await this.deps.ledger.getRecord(lastKey(product.zone)))?.price;
    return {
      zone: product.zone,
      windowStart: product.windowStart,
      windowEnd: product.windowEnd,
      bids: p ? p.book.depth('bid', depth) : [],
      offers: p ? p.book.depth('offer', depth) : [],
      ...(last ? { lastPriceMsatPerKWh: BigInt(last.price), lastTradeAt: last.at } : {}),
      ...(zonePrice !== undefined ? { zoneLastPriceMsatPerKWh: BigInt(zonePrice) } : {}),
    };
  }

  // ---- trades -------------------------------------------------------------------------------

  /**
   * Starts a trade's settlement: a metered stream from the consumer to the producer at 1 msat per
   * unit, whose units are the msat the delivered Wh are worth (so a price per kWh that is not a
   * multiple of 1000 is carried exactly: the sub-msat rest of each reading waits for the next).
   * Its prepaid chunk (a pending ledger transfer of the consumer) covers `prefundWh` at a time.
   * The stream's idempotency key is the trade's: a restart that finds the trade `matched` gets the
   * same stream.
   */
  private async fund(t: EnergyTrade): Promise<void> {
    if (t.state !== 'matched') return;
    const total = (t.quantityWh * t.priceMsatPerKWh) / 1000n;
    if (total === 0n) return this.finish(t, 'completed');
    let s: PublicStream;
    try {
      s = await this.deps.streams.create(
        t.consumerAccountId,
        {
          payee: { accountId: t.producerAccountId },
          priceMsatPerUnit: msat(1n),
          prefundMsat: msat(this.firstChunk(t.quantityWh, t.priceMsatPerKWh)),
          maxTotalMsat: msat(total),
          memo: streamMemo(t.id),
        },
        `energy-trade:${t.id}`,
      );
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return this.unfunded(t, err);
    }
    t.streamId = s.id;
    t.state = 'delivering';
    this.byStream.set(s.id, t.id);
    // The retry after a restart may find the stream stopped meanwhile: no stop event will come.
    if (s.state === 'stopped') return this.onStreamStopped(t.id, s);
    await this.save(t);
  }

  /**
   * The consumer's first chunk was refused: the trade closes `unfunded`, the rest of the bid is
   * canceled (it would fail the same way), and the offer gets the trade's quantity back (matched
   * again at once if the book crosses it). One write: a crash before it funds the trade again.
   */
  private async unfunded(t: EnergyTrade, err: AppError): Promise<void> {
    const offer = await this.orders.find(t.offerId);
    // From here to the write, one synchronous step.
    const now = this.now();
    t.state = 'unfunded';
    t.closeCode = err.code;
    t.closeMessage = err.message;
    t.updatedAt = now;
    this.trades.remember(t);
    const records: SideRecords = [...tradeIndex.records(t)];
    const changed: EnergyOrder[] = [];
    const bid = this.orders.openItem(t.bidId);
    if (bid?.state === 'open') {
      this.close(bid, 'canceled');
      records.push(...orderIndex.records(bid));
      changed.push(bid);
    }
    let put: { records: SideRecords; trades: EnergyTrade[] } | undefined;
    if (offer && (offer.state === 'open' || offer.state === 'filled') && offer.windowEnd > now) {
      const wasOpen = offer.state === 'open';
      this.products.get(productKey(offer))?.book.cancel(offer.id);
      offer.filledWh -= t.quantityWh;
      put = this.match(offer, now);
      if (wasOpen && offer.state !== 'open') this.count(offer.accountId, -1);
      if (!wasOpen && offer.state === 'open') this.count(offer.accountId, 1);
      records.push(...put.records);
    }
    await this.deps.ledger.putRecords(records);
    this.publishTrade(t);
    for (const o of changed) this.publishOrder(o);
    if (offer && put) this.published(offer, put.trades);
  }

  /** A meter reading of one interval of a trade (`interval` counts up from 0 per meter). */
  async report(tradeId: string, who: Reporter, interval: number, wh: bigint): Promise<EnergyTrade> {
    if (!Number.isSafeInteger(interval) || interval < 0)
      throw invalid('interval must be a non-negative integer');
    if (wh < 0n || wh > MAX_WH) throw invalid('wh must be 0 to 10^12');
    return this.queue.run(tradeId, async () => {
      const t = await this.mustTrade(tradeId);
      const last = who === 'producer' ? t.producerInterval : t.consumerInterval;
      if (interval <= last) {
        // A retry of a reading already taken is answered again; anything else is refused.
        const same = this.readingOf(t, who, interval);
        if (interval === last && (same === undefined || same === wh)) {
          // It was taken; what it billed may not have reached the stream (a failure after the write).
          if (t.state === 'delivering') await this.catchUp(t.id);
          return { ...t };
        }
        throw new EnergyError(EnergyErrorCode.READING_CONFLICT, `interval ${interval} was reported before`);
      }
      if (t.state !== 'delivering')
        throw new EnergyError(EnergyErrorCode.TRADE_CLOSED, `trade ${tradeId} is ${t.state}`);
      if (who === 'consumer' && t.consumerMeterId === undefined)
        throw invalid('this trade has no consumer meter');
      const mine = who === 'producer' ? t.pendingProducer : t.pendingConsumer;
      const theirs = who === 'producer' ? t.pendingConsumer : t.pendingProducer;
      // Every check before any change: a refused reading leaves the trade as it was.
      const at = t.consumerMeterId === undefined ? -1 : theirs.findIndex((r) => r.interval === interval);
      if (t.consumerMeterId !== undefined && at < 0 && mine.length >= this.maxPending)
        throw new EnergyError(
          EnergyErrorCode.TOO_MANY_PENDING_READINGS,
          'too many readings wait for the other meter',
        );
      if (who === 'producer') {
        t.producerInterval = interval;
        t.producedWh += wh;
      } else {
        t.consumerInterval = interval;
        t.consumedWh += wh;
      }
      t.updatedAt = this.now();
      if (t.consumerMeterId === undefined) {
        await this.settle(t, wh);
        return { ...t };
      }
      if (at < 0) {
        mine.push({ interval, wh });
        // Readings of intervals the other meter has passed will never be matched: a dispute.
        const otherLast = who === 'producer' ? t.consumerInterval : t.producerInterval;
        if (interval < otherLast)
          return this.dispute(t, interval, who === 'producer' ? wh : 0n, who === 'consumer' ? wh : 0n);
        await this.save(t);
        return { ...t };
      }
      const other = theirs.splice(at, 1)[0]!.wh;
      const [p, c] = who === 'producer' ? [wh, other] : [other, wh];
      if (!this.agree(p, c)) return this.dispute(t, interval, p, c);
      await this.settle(t, p < c ? p : c);
      return { ...t };
    });
  }

  private readingOf(t: EnergyTrade, who: Reporter, interval: number): bigint | undefined {
    return (who === 'producer' ? t.pendingProducer : t.pendingConsumer).find(
      (r: Reading) => r.interval === interval,
    )?.wh;
  }

  /** |p − c| ≤ tolerance × max(p, c), in integers. */
  private agree(p: bigint, c: bigint): boolean {
    const diff = p > c ? p - c : c - p;
    const max = p > c ? p : c;
    return diff * 10_000n <= this.toleranceBps * max;
  }

  /**
   * Accepts `wh` more for payment (up to the trade's quantity) and bills what it is worth: the
   * trade's `billedMsat` is written first, then the stream told the difference (`tell`).
   */
  private async settle(t: EnergyTrade, wh: bigint): Promise<void> {
    const room = t.quantityWh - t.settledWh;
    t.settledWh += wh < room ? wh : room;
    t.billedMsat = msat((t.settledWh * t.priceMsatPerKWh) / 1000n);
    await this.save(t);
    await this.completeIfDone(t, await this.tell(t));
  }

  /**
   * Tells the trade's stream what was billed and not told yet. The stream's `units` (1 msat each)
   * are the record of what it was told, so this is exact after any failure or crash between the
   * trade's write and the stream's (run again with the next reading, at start, on resume, before
   * a stop). A stream that is not active is left as it is: its stop event closes the trade, its
   * resume calls this again.
   */
  private async tell(t: EnergyTrade): Promise<PublicStream> {
    let s = await this.deps.streams.get(t.streamId!);
    let delta = t.billedMsat - (s.units ?? 0n);
    try {
      while (delta > 0n && s.state === 'active') {
        const part = delta > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : delta;
        s = await this.deps.streams.reportUsage(t.streamId!, Number(part));
        delta -= part;
      }
    } catch (err) {
      // Stopped or paused meanwhile (the consumer's credit lapsed): as above.
      if (!(err instanceof AppError) || (err.code !== 'STREAM_STOPPED' && err.code !== 'STREAM_NOT_ACTIVE'))
        throw err;
      s = await this.deps.streams.get(t.streamId!);
    }
    t.paidMsat = s.paidMsat;
    return s;
  }

  private async completeIfDone(t: EnergyTrade, s: PublicStream): Promise<void> {
    if (t.settledWh === t.quantityWh && s.state === 'active') await this.finish(t, 'completed');
  }

  /** A delivering trade's stream is active again (start, resume): it is told what it missed. */
  private async catchUp(tradeId: string): Promise<void> {
    const t = this.trades.openItem(tradeId);
    if (t?.state !== 'delivering' || t.streamId === undefined) return;
    await this.completeIfDone(t, await this.tell(t));
  }

  /** The streams service asks before pausing: a trade's stream is not paused (stop the trade). */
  private pauseRefusal(s: PublicStream): string | undefined {
    // A trade being funded has no stream id yet: its stream is known by its memo.
    const tradeId = this.byStream.get(s.id) ?? s.memo?.match(/^energy trade (\S+)$/)?.[1];
    const t = tradeId === undefined ? undefined : this.trades.openItem(tradeId);
    if (!t || isFinalTrade(t) || t.consumerAccountId !== s.payerAccountId) return undefined;
    if (t.producerAccountId !== s.payeeAccountId) return undefined;
    return `stream ${s.id} settles energy trade ${t.id}: stop the trade instead of pausing its stream`;
  }

  private async dispute(t: EnergyTrade, interval: number, p: bigint, c: bigint): Promise<EnergyTrade> {
    t.closeCode = 'DELIVERY_MISMATCH';
    t.closeMessage = `interval ${interval}: the producer's meter read ${p} Wh, the consumer's ${c} Wh`;
    await this.finish(t, 'disputed');
    return { ...t };
  }

  /** Closes a trade: its stream is stopped (what is billed and due is paid), then the record saved. */
  private async finish(t: EnergyTrade, state: 'completed' | 'disputed' | 'stopped'): Promise<void> {
    let final: EnergyTrade['state'] = state;
    if (t.streamId !== undefined) {
      // What was billed is told first, so that the stop pays it.
      let s = await this.tell(t);
      if (s.state !== 'stopped') s = await this.deps.streams.stop(t.streamId, `energy trade ${state}`);
      t.paidMsat = s.paidMsat;
      if (s.stopReason === 'funds_exhausted' || s.stopReason === 'policy_denied') {
        final = 'lapsed';
        t.closeCode = s.stopCode ?? s.stopReason;
      }
      this.byStream.delete(t.streamId);
    }
    t.state = final;
    t.updatedAt = this.now();
    await this.save(t);
  }

  /** The stream stopped by itself (the consumer's credit lapsed, a cap, or a party stopped it). */
  private async onStreamStopped(tradeId: string, s: PublicStream): Promise<void> {
    const t = this.trades.openItem(tradeId);
    this.byStream.delete(s.id);
    if (!t || isFinalTrade(t)) return;
    t.paidMsat = s.paidMsat;
    t.state =
      s.stopReason === 'cap_reached' ? 'completed' : s.stopReason === 'requested' ? 'stopped' : 'lapsed';
    if (t.state !== 'completed') {
      t.closeCode = s.stopCode ?? s.stopReason ?? 'requested';
      if (s.stopMessage !== undefined) t.closeMessage = s.stopMessage;
    }
    t.updatedAt = this.now();
    await this.save(t);
  }

  /** A party stops a delivering trade: what was billed is paid, the rest is not delivered. */
  async stopTrade(accountId: string, tradeId: string): Promise<EnergyTrade> {
    return this.queue.run(tradeId, async () => {
      const t = await this.mustTrade(tradeId);
      if (t.producerAccountId !== accountId && t.consumerAccountId !== accountId)
        throw new EnergyError(EnergyErrorCode.TRADE_NOT_FOUND, `no trade ${tradeId}`);
      if (isFinalTrade(t))
        throw new EnergyError(EnergyErrorCode.TRADE_CLOSED, `trade ${tradeId} is ${t.state}`);
      t.closeCode = 'STOPPED_BY_PARTY';
      t.closeMessage = `stopped by ${accountId}`;
      await this.finish(t, 'stopped');
      return { ...t };
    });
  }

  async getTrade(id: string): Promise<EnergyTrade> {
    return { ...(await this.mustTrade(id)) };
  }

  /** The account's trades (as producer or consumer), newest first, a page at a time. */
  async listTrades(
    accountId: string,
    page: { limit?: number; before?: string } = {},
  ): Promise<{ trades: EnergyTrade[]; next?: string }> {
    const { entries, next } = await tradeIndex.page(
      this.deps.ledger,
      accountId,
      clampLimit(page.limit),
      page.before,
    );
    const trades: EnergyTrade[] = [];
    for (const { id } of entries) {
      const t = await this.trades.peek(id);
      if (t) trades.push({ ...t });
    }
    return { trades, ...(next ? { next } : {}) };
  }

  /** Every trade, newest first, as the public tape shows it. */
  async tape(
    page: { limit?: number; before?: string } = {},
  ): Promise<{ trades: TapeEntry[]; next?: string }> {
    const { entries, next } = await tradeIndex.page(
      this.deps.ledger,
      undefined,
      clampLimit(page.limit),
      page.before,
    );
    const trades: TapeEntry[] = [];
    for (const { id } of entries) {
      const t = await this.trades.peek(id);
      if (t)
        trades.push({
          id: t.id,
          zone: t.zone,
          windowStart: t.windowStart,
          windowEnd: t.windowEnd,
          priceMsatPerKWh: t.priceMsatPerKWh,
          quantityWh: t.quantityWh,
          takerSide: t.takerSide,
          createdAt: t.createdAt,
        });
    }
    return { trades, ...(next ? { next } : {}) };
  }

  /** Which side of a trade a device reports for: the consumer's meter, or a device of the producer. */
  async reporterOf(tradeId: string, device: { deviceId: string; accountId: string }): Promise<Reporter> {
    const t = await this.mustTrade(tradeId);
    if (t.consumerMeterId === device.deviceId) return 'consumer';
    if (t.producerAccountId === device.accountId) return 'producer';
    throw new EnergyError(EnergyErrorCode.NOT_A_PARTY, 'this device does not meter this trade');
  }

  stats(): { openOrders: number; products: number; openTrades: number } {
    return {
      openOrders: this.orders.stats().open,
      products: this.products.size,
      openTrades: this.trades.stats().open,
    };
  }

  // ---- internals ----------------------------------------------------------------------------

  /** A product lives while its book has orders (its last price is on disk). */
  private forgetIfEmpty(p: ProductState): void {
    if (p.book.size === 0) this.products.delete(productKey(p.product));
  }

  private productOf(p: Product): ProductState {
    const key = productKey(p);
    let s = this.products.get(key);
    if (!s) {
      s = {
        product: { zone: p.zone, windowStart: p.windowStart, windowEnd: p.windowEnd },
        book: new OrderBook(),
      };
      this.products.set(key, s);
    }
    return s;
  }

  private count(accountId: string, delta: number): void {
    const n = (this.openPerAccount.get(accountId) ?? 0) + delta;
    if (n <= 0) this.openPerAccount.delete(accountId);
    else this.openPerAccount.set(accountId, n);
  }

  private async mustTrade(id: string): Promise<EnergyTrade> {
    const t = typeof id === 'string' ? await this.trades.find(id) : undefined;
    if (!t) throw new EnergyError(EnergyErrorCode.TRADE_NOT_FOUND, `no trade ${String(id)}`);
    return t;
  }

  private async save(t: EnergyTrade): Promise<void> {
    this.trades.remember(t);
    await this.deps.ledger.putRecords(tradeIndex.records(t));
    this.publishTrade(t);
  }

  private publishOrder(o: EnergyOrder): void {
    this.deps.publish(o.accountId, { type: 'energy_order', order: { ...o } });
  }

  private publishTrade(t: EnergyTrade): void {
    const event = { type: 'energy_trade' as const, trade: { ...t } };
    this.deps.publish(t.producerAccountId, event);
    this.deps.publish(t.consumerAccountId, event);
  }
}

function clampLimit(limit: number | undefined): number {
  return Math.min(Math.max(limit ?? 100, 1), 500);
}
