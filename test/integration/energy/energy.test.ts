import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startDeviceTransports, type DeviceTransportHandle } from '../../../src/main.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';

let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let s: AccountServices;
let mqtt: DeviceTransportHandle;
const devices: VirtualDevice[] = [];
const SLOT = 900_000;
const windowStart = Math.ceil(Date.now() / SLOT) * SLOT + SLOT;
const product = { zone: 'grid-a', windowStart, windowEnd: windowStart + SLOT };

beforeAll(async () => {
  backend = await backendFor('alice');
  const config = {
    ...DEFAULTS,
    dataDir: mkdtempSync(join(tmpdir(), 'coulomb-energy-')),
    mqtt: { enabled: true, host: '127.0.0.1', port: 0 },
    energy: { prefundWh: 100, toleranceBps: 200 },
  };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }), { payTimeoutMs: 5_000 });
  s = stack.services;
  mqtt = await startDeviceTransports(config, s.devices!, pino({ level: 'silent' }));
});
afterAll(async () => {
  for (const d of devices) await d.close();
  await mqtt?.close();
  await stack?.close();
  await backend?.close();
});

async function account(id: string): Promise<void> {
  if (await s.ledger.getAccount(id)) return;
  await s.ledger.createAccount({ id, kind: 'device', name: id }).durable;
  await s.policies.set(id, tierPolicy('L2'));
}

async function device(accountId: string): Promise<VirtualDevice> {
  await account(accountId);
  const d = VirtualDevice.random(s.devices!.gatewayId);
  await s.devices!.registry.register({ deviceId: d.id, accountId, name: accountId });
  await d.connect(mqtt.mqttUrl);
  devices.push(d);
  return d;
}

/** Funds an account over Lightning: bob pays its invoice. */
async function fund(accountId: string, amountMsat: bigint): Promise<void> {
  await account(accountId);
  const inv = await s.payments.createInvoice(accountId, {
    amountMsat: msat(amountMsat),
    description: 'fund',
  });
  await pay({ lnd: await rawLnd('bob'), request: inv.request });
  await eventually(
    async () => (balanceOf(await s.ledger.requireAccount(accountId)) >= amountMsat ? true : undefined),
    15_000,
    `funding ${accountId}`,
  );
}

/** The `stop` event of a stream (a device also hears of the other streams that stopped). */
async function stopFor(d: VirtualDevice, streamId: string): Promise<Record<string, unknown>> {
  for (;;) {
    const e = JSON.parse((await d.nextEvent('stop', 15_000)).b) as Record<string, unknown>;
    if (e['streamId'] === streamId) return e;
  }
}

const body = (r: { b: string }) => JSON.parse(r.b) as Record<string, unknown>;
const order = (side: 'offer' | 'bid', quantityWh: string, priceMsatPerKWh: string, extra = {}) => ({
  side,
  ...product,
  quantityWh,
  priceMsatPerKWh,
  ...extra,
});

describe('the energy market on regtest', () => {
  it('two producer meters and two consumers trade with a partial fill; metered settlement pays price × Wh exactly and stops the relay when credit lapses', async () => {
    const meter1 = await device('prod-1');
    const meter2 = await device('prod-2');
    await fund('cons-1', 100_000n);
    await fund('cons-2', 10_000n);
    const relay2 = await device('cons-2');
    // The producers' meters post their offers.
    const o1 = await meter1.call('energy.order', order('offer', '600', '50000'));
    const o2 = await meter2.call('energy.order', order('offer', '500', '40001'));
    expect(o1.ok && o2.ok).toBe(true);
    // Consumer 1 takes all of producer 2 (the best price) and 200 Wh of producer 1.
    const b1 = await s.energy!.submit('cons-1', {
      side: 'bid',
      ...product,
      quantityWh: 700n,
      priceMsatPerKWh: msat(60_000),
    });
    expect(b1.trades.map((t) => [t.producerAccountId, t.quantityWh, t.priceMsatPerKWh])).toEqual([
      ['prod-2', 500n, 40_001n],
      ['prod-1', 200n, 50_000n],
    ]);
    // Consumer 2 buys 300 Wh of what rests of producer 1's offer (partial fill of the offer).
    const b2 = await s.energy!.submit('cons-2', {
      side: 'bid',
      ...product,
      quantityWh: 300n,
      priceMsatPerKWh: msat(55_000),
    });
    expect(b2.trades.map((t) => [t.producerAccountId, t.quantityWh])).toEqual([['prod-1', 300n]]);
    expect((await s.energy!.book(product)).offers).toEqual([{ price: 50_000n, quantity: 100n, orders: 1 }]);

    const [t12, t11] = b1.trades as [(typeof b1.trades)[0], (typeof b1.trades)[0]];
    await eventually(
      async () => ((await s.energy!.getTrade(t12.id)).state === 'delivering' ? true : undefined),
      10_000,
      'funded',
    );
    // Producer 2's meter: 333 Wh then 167 Wh at 40,001 msat/kWh → 20,000.5 msat: 20,000 paid.
    expect(body(await meter2.call('meter.report', { tradeId: t12.id, interval: 0, wh: 333 }))).toMatchObject({
      billedMsat: '13320',
    });
    await meter2.call('meter.report', { tradeId: t12.id, interval: 1, wh: 167 });
    // Producer 1's meter delivers consumer 1's 200 Wh: 10,000 msat.
    await eventually(
      async () => ((await s.energy!.getTrade(t11.id)).state === 'delivering' ? true : undefined),
      10_000,
      'funded',
    );
    await meter1.call('meter.report', { tradeId: t11.id, interval: 0, wh: 200 });
    await eventually(
      async () =>
        (await s.energy!.getTrade(t12.id)).state === 'completed' &&
        (await s.energy!.getTrade(t11.id)).state === 'completed'
          ? true
          : undefined,
      15_000,
      'both trades completed',
    );
    expect(balanceOf(await s.ledger.requireAccount('prod-2'))).toBe(20_000n);
    expect(balanceOf(await s.ledger.requireAccount('cons-1'))).toBe(100_000n - 30_000n);

    // Consumer 2 has 10,000 msat: 200 of its 300 Wh. Its relay is told to stop when credit lapses.
    const t2 = b2.trades[0]!;
    await eventually(
      async () => ((await s.energy!.getTrade(t2.id)).state === 'delivering' ? true : undefined),
      10_000,
      'funded',
    );
    await meter1.call('meter.report', { tradeId: t2.id, interval: 0, wh: 150 });
    await meter1.call('meter.report', { tradeId: t2.id, interval: 1, wh: 100 });
    const streamId = (await s.energy!.getTrade(t2.id)).streamId!;
    expect(await stopFor(relay2, streamId)).toMatchObject({ reason: 'funds_exhausted' });
    expect(await stopFor(meter1, streamId)).toMatchObject({ reason: 'funds_exhausted' });
    await eventually(
      async () => ((await s.energy!.getTrade(t2.id)).state === 'lapsed' ? true : undefined),
      10_000,
      'lapsed',
    );
    // What the stream paid before the lapse went to the producer, to the msat; the reading that
    // the consumer's next prepaid chunk could not cover was not paid.
    const lapsed = await s.energy!.getTrade(t2.id);
    expect(lapsed.billedMsat).toBe(12_500n);
    expect(lapsed.paidMsat < lapsed.billedMsat).toBe(true);
    expect(balanceOf(await s.ledger.requireAccount('prod-1'))).toBe(10_000n + lapsed.paidMsat);
    expect(balanceOf(await s.ledger.requireAccount('cons-2'))).toBe(10_000n - lapsed.paidMsat);
  });

  it('a delivery mismatch beyond the tolerance opens a dispute instead of paying', async () => {
    const producer = await device('prod-3');
    await fund('cons-3', 50_000n);
    const consumerMeter = await device('cons-3');
    await producer.call('energy.order', order('offer', '1000', '10000'));
    const bid = await consumerMeter.call(
      'energy.order',
      order('bid', '1000', '10000', { meterDeviceId: consumerMeter.id }),
    );
    const tradeId = (body(bid)['trades'] as { tradeId: string }[])[0]!.tradeId;
    await eventually(
      async () => ((await s.energy!.getTrade(tradeId)).state === 'delivering' ? true : undefined),
      10_000,
      'funded',
    );
    await producer.call('meter.report', { tradeId, interval: 0, wh: 100 });
    await consumerMeter.call('meter.report', { tradeId, interval: 0, wh: 100 });
    await producer.call('meter.report', { tradeId, interval: 1, wh: 100 });
    const r = await consumerMeter.call('meter.report', { tradeId, interval: 1, wh: 50 });
    expect(body(r)).toMatchObject({ state: 'disputed', settledWh: '100' });
    const t = await s.energy!.getTrade(tradeId);
    expect(t.closeCode).toBe('DELIVERY_MISMATCH');
    await eventually(
      async () => (balanceOf(await s.ledger.requireAccount('prod-3')) === 1_000n ? true : undefined),
      10_000,
      'only the agreed interval paid',
    );
    expect(balanceOf(await s.ledger.requireAccount('cons-3'))).toBe(49_000n);
  });
});
