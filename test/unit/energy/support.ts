import { afterEach } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { EnergyMarket, type EnergyOptions } from '../../../src/energy/market.js';
import type { NewOrder } from '../../../src/energy/types.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { StreamsService } from '../../../src/streams/service.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';
import { ManualClock, settle } from '../streams/support.js';

export const SLOT = 900_000;
const W = { zone: 'nl-1', windowStart: 1_700_000_100 * 1000 - ((1_700_000_100 * 1000) % SLOT) + SLOT * 4 };
export const product = { ...W, windowEnd: W.windowStart + SLOT };
export const order = (
  side: 'offer' | 'bid',
  wh: number,
  price: number,
  extra: Partial<NewOrder> = {},
): NewOrder => ({
  side,
  ...product,
  quantityWh: BigInt(wh),
  priceMsatPerKWh: msat(price),
  ...extra,
});

export const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A market with its streams and ledger; a second one on the same `store` stands for a restart. */
export async function fixture(options: EnergyOptions = {}, store = new MemoryLedgerStore()) {
  const clock = new ManualClock(1_700_000_000_000);
  const f = await paymentsFixture({ now: () => clock.now() }, store);
  const streams = new StreamsService({
    ledger: f.ledger,
    payments: f.service,
    publish: (id, e) => f.events.publish(id, { ...e }),
    log: silentLog,
    clock,
    options: { firstChunkStagger: 0 },
  });
  await streams.start();
  /** A market on this ledger and these streams (a second one stands for a restart). */
  const newMarket = () =>
    new EnergyMarket({
      ledger: f.ledger,
      streams,
      bus: f.events,
      publish: (id, e) => f.events.publish(id, e),
      deviceOf: (id) => (id === 'ab'.repeat(32) ? { accountId: 'c3', active: true } : undefined),
      log: silentLog,
      now: () => clock.now(),
      options: { prefundWh: 100, toleranceBps: 200, sweepMs: 3600_000, ...options },
    });
  const market = newMarket();
  await market.start();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    market.stop();
    await streams.stop();
    f.service.stop();
    await f.ledger.flush();
  };
  closers.push(close);
  const balance = (id: string) => balanceOf(f.ledger.accountNow(id)!);
  /** Lets the stream scheduler pay what was billed. */
  const run = async (seconds = 2) => {
    await clock.advance(seconds * 1000);
    await settle(20);
  };
  return { ...f, clock, streams, market, newMarket, balance, run, close };
}
