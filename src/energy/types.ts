import type { Msat } from '../domain/msat.js';
import type { Side } from './book.js';

export type { Side } from './book.js';

/**
 * A product of the market: a grid zone and a delivery window (aligned to the market's slot).
 * Orders are matched only with orders of the same product.
 */
export interface Product {
  zone: string;
  /** ms since the epoch, a multiple of the slot. */
  windowStart: number;
  /** ms, after windowStart, a multiple of the slot. */
  windowEnd: number;
}

export type OrderState = 'open' | 'filled' | 'canceled' | 'expired';

/** An offer (a producer sells) or a bid (a consumer buys). */
export interface EnergyOrder extends Product {
  id: string;
  accountId: string;
  side: Side;
  /** msat per kWh: the most a bid pays, the least an offer takes. */
  priceMsatPerKWh: Msat;
  quantityWh: bigint;
  filledWh: bigint;
  /** Bids: the consumer's meter (a device) whose readings verify delivery. */
  meterDeviceId?: string;
  state: OrderState;
  /** Time priority among the open orders (arrival order). */
  seq: number;
  createdAt: number;
  updatedAt: number;
}

export interface NewOrder extends Product {
  side: Side;
  priceMsatPerKWh: Msat;
  quantityWh: bigint;
  meterDeviceId?: string;
}

/**
 * matched → delivering (the metered stream runs) → completed (all delivered and paid) | lapsed
 * (the consumer's credit ran out: the stream stopped, the devices were told `stop`) | disputed
 * (the two meters disagreed beyond the tolerance: the interval was not paid, the stream stopped)
 * | stopped (a party stopped it, or closeCode DELIVERY_WINDOW_ENDED: still open `graceSeconds`
 * after its window ended) | unfunded (the consumer's first prepaid chunk was refused: the offer got
 * the quantity back, the bid's rest was canceled).
 */
export type TradeState =
  'matched' | 'delivering' | 'completed' | 'lapsed' | 'disputed' | 'stopped' | 'unfunded';

export interface Reading {
  interval: number;
  wh: bigint;
}

export interface EnergyTrade extends Product {
  id: string;
  offerId: string;
  bidId: string;
  producerAccountId: string;
  consumerAccountId: string;
  /** The consumer's meter: when set, each interval is paid only once both meters agree. */
  consumerMeterId?: string;
  takerSide: Side;
  priceMsatPerKWh: Msat;
  quantityWh: bigint;
  state: TradeState;
  /** Readings the producer reported (sum), and the consumer's. */
  producedWh: bigint;
  consumedWh: bigint;
  /** Delivery accepted for payment (verified where both meters report), at most quantityWh. */
  settledWh: bigint;
  /**
   * floor(settledWh × price / 1000): what the stream is to be told to pay (the rest carries); the
   * stream's `units` are what it was told, and the difference is told before anything else.
   */
  billedMsat: Msat;
  /** What the stream paid the producer. */
  paidMsat: Msat;
  streamId?: string;
  /** The last interval each side reported (-1: none yet); intervals only go up. */
  producerInterval: number;
  consumerInterval: number;
  /** Readings waiting for the other meter's reading of the same interval. */
  pendingProducer: Reading[];
  pendingConsumer: Reading[];
  closeCode?: string;
  closeMessage?: string;
  createdAt: number;
  updatedAt: number;
}

export const isFinalOrder = (o: EnergyOrder): boolean => o.state !== 'open';
export const isFinalTrade = (t: EnergyTrade): boolean => t.state !== 'matched' && t.state !== 'delivering';

/** The sub-msat part owed but not billed yet, in thousandths of a msat (exact). */
export const carryMilliMsat = (t: EnergyTrade): bigint => (t.settledWh * t.priceMsatPerKWh) % 1000n;

export const productKey = (p: Product): string => `${p.zone}|${p.windowStart}|${p.windowEnd}`;
