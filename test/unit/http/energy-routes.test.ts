import { afterEach, describe, expect, it } from 'vitest';
import { EnergyMarket } from '../../../src/energy/market.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { StreamsService } from '../../../src/streams/service.js';
import { accountsApp, paymentsFixture, silentLog } from '../../support/payments-fixture.js';

const KEY = 'energy-routes-operator-key-0123456789abcdef';
const SLOT = 900_000;
const start = Math.ceil(Date.now() / SLOT) * SLOT + SLOT;
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function app(): Promise<CoulombApp> {
  const f = await paymentsFixture();
  const streams = new StreamsService({
    ledger: f.ledger,
    payments: f.service,
    publish: (id, e) => f.events.publish(id, { ...e }),
    log: silentLog,
  });
  await streams.start();
  const energy = new EnergyMarket({
    ledger: f.ledger,
    streams,
    bus: f.events,
    publish: (id, e) => f.events.publish(id, e),
    deviceOf: () => undefined,
    log: silentLog,
    options: { sweepMs: 3600_000 },
  });
  await energy.start();
  await f.account('seller', 0n);
  await f.account('buyer', 1_000_000n);
  const a = await accountsApp(f, KEY, { streams, energy });
  closers.push(async () => {
    await a.close();
    energy.stop();
    await streams.stop();
    f.service.stop();
  });
  return a;
}

const auth = { authorization: `Bearer ${KEY}` };

describe('energy routes', () => {
  it('posts orders, shows the public book and tape, and refuses bad input with stable codes', async () => {
    const a = await app();
    const order = (side: string, extra: Record<string, unknown> = {}) => ({
      side,
      zone: 'z1',
      windowStart: start,
      windowEnd: start + SLOT,
      quantityWh: '100',
      priceMsatPerKWh: '40000',
      ...extra,
    });
    const offer = await a.inject({
      method: 'POST',
      url: '/v1/accounts/seller/energy/orders',
      headers: auth,
      payload: order('offer'),
    });
    expect(offer.statusCode).toBe(201);
    const bid = await a.inject({
      method: 'POST',
      url: '/v1/accounts/buyer/energy/orders',
      headers: auth,
      payload: order('bid', { quantityWh: '60', priceMsatPerKWh: '50000' }),
    });
    expect(bid.statusCode).toBe(201);
    const trade = (bid.json() as { trades: { id: string; quantityWh: string; priceMsatPerKWh: string }[] })
      .trades[0]!;
    expect(trade).toMatchObject({ quantityWh: '60', priceMsatPerKWh: '40000' });
    // The book and the tape are public.
    const book = await a.inject({
      method: 'GET',
      url: `/v1/energy/book?zone=z1&windowStart=${start}&windowEnd=${start + SLOT}`,
    });
    expect(book.statusCode).toBe(200);
    expect(book.json()).toMatchObject({
      offers: [{ price: '40000', quantity: '40', orders: 1 }],
      bids: [],
      lastPriceMsatPerKWh: '40000',
      zoneLastPriceMsatPerKWh: '40000',
    });
    const tape = await a.inject({ method: 'GET', url: '/v1/energy/trades' });
    expect(tape.json()).toMatchObject({ trades: [{ id: trade.id, quantityWh: '60' }] });
    expect(JSON.stringify(tape.json())).not.toContain('buyer');
    const reading = await a.inject({
      method: 'POST',
      url: `/v1/accounts/seller/energy/trades/${trade.id}/readings`,
      headers: auth,
      payload: { interval: 0, wh: '30' },
    });
    expect(reading.statusCode).toBe(200);
    expect(reading.json()).toMatchObject({ settledWh: '30', billedMsat: '1200' });
    // Bad input: 4xx with stable codes.
    const misaligned = await a.inject({
      method: 'POST',
      url: '/v1/accounts/seller/energy/orders',
      headers: auth,
      payload: order('offer', { windowStart: start + 1 }),
    });
    expect(misaligned.statusCode).toBe(400);
    expect(misaligned.json()).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
    const float = await a.inject({
      method: 'POST',
      url: '/v1/accounts/seller/energy/orders',
      headers: auth,
      payload: order('offer', { priceMsatPerKWh: '1.5' }),
    });
    expect(float.statusCode).toBe(400);
    const stranger = await a.inject({
      method: 'GET',
      url: `/v1/accounts/nobody/energy/trades/${trade.id}`,
      headers: auth,
    });
    expect(stranger.statusCode).toBe(404);
    expect(stranger.json()).toMatchObject({ error: { code: 'ENERGY_TRADE_NOT_FOUND' } });
    const cancel = await a.inject({
      method: 'POST',
      url: `/v1/accounts/buyer/energy/orders/${(bid.json() as { order: { id: string } }).order.id}/cancel`,
      headers: auth,
    });
    expect(cancel.statusCode).toBe(409);
    expect(cancel.json()).toMatchObject({ error: { code: 'ENERGY_ORDER_CLOSED' } });
  });
});
