import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import mqttClient from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import { signRequest } from '../../../src/devices/envelope.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startDeviceTransports, type DeviceTransportHandle } from '../../../src/main.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';

let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let s: AccountServices;
let mqtt: DeviceTransportHandle;
const devices: VirtualDevice[] = [];

beforeAll(async () => {
  backend = await backendFor('alice');
  const config = {
    ...DEFAULTS,
    dataDir: mkdtempSync(join(tmpdir(), 'coulomb-devices-')),
    mqtt: { enabled: true, host: '127.0.0.1', port: 0 },
  };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }), {
    payTimeoutMs: 5_000,
    escrow: { blockPollMs: 500 },
  });
  s = stack.services;
  mqtt = await startDeviceTransports(config, s.devices!, pino({ level: 'silent' }));
});
afterAll(async () => {
  for (const d of devices) await d.close();
  await mqtt?.close();
  await stack?.close();
  await backend?.close();
});

async function device(accountId: string): Promise<VirtualDevice> {
  if (!(await s.ledger.getAccount(accountId))) {
    await s.ledger.createAccount({ id: accountId, kind: 'device', name: accountId }).durable;
    await s.policies.set(accountId, tierPolicy('L2'));
  }
  const d = VirtualDevice.random(s.devices!.gatewayId);
  await s.devices!.registry.register({ deviceId: d.id, accountId, name: accountId });
  await d.connect(mqtt.mqttUrl);
  devices.push(d);
  return d;
}

const body = (r: { b: string }) => JSON.parse(r.b) as Record<string, unknown>;

describe('IoT devices over MQTT on regtest', () => {
  it('a sensor sells a reading to a buyer paying from an external LND', async () => {
    const sensor = await device('sensor-acct');
    const offer = await sensor.call('offer.sell', { priceMsat: '15000000', description: 'temperature' });
    expect(offer.ok).toBe(true);
    const { request, paymentHash } = body(offer) as { request: string; paymentHash: string };
    const paid = await pay({ lnd: await rawLnd('bob'), request });
    const sold = await sensor.nextEvent('sold');
    expect(JSON.parse(sold.b)).toMatchObject({ paymentHash });
    // Before delivery the buyer learns the sale is paid but not yet delivered.
    expect(await s.devices!.commerce.readSale(paymentHash, paid.secret)).toEqual({ state: 'sold' });
    const delivered = await sensor.call('sale.deliver', { paymentHash, reading: '21.5 °C at 10:42' });
    expect(delivered.ok).toBe(true);
    expect(await s.devices!.commerce.readSale(paymentHash, paid.secret)).toEqual({
      state: 'delivered',
      reading: '21.5 °C at 10:42',
    });
    await expect(s.devices!.commerce.readSale(paymentHash, '00'.repeat(32))).rejects.toMatchObject({
      code: 'SALE_NOT_FOUND',
    });
    expect(balanceOf(await s.ledger.requireAccount('sensor-acct'))).toBe(15_000_000n);
  });

  it('pay-to-actuate settles on acknowledgement and refunds the buyer when the device stays silent', async () => {
    const sw = await device('switch-acct');
    const bob = await rawLnd('bob');
    const a = await s.devices!.commerce.requestActuation(sw.id, {
      command: 'open',
      priceMsat: msat(5_000_000),
    });
    const paying = pay({ lnd: bob, request: a.request }).then(
      () => 'paid',
      () => 'failed',
    );
    const actuate = await sw.nextEvent('actuate');
    expect(JSON.parse(actuate.b)).toMatchObject({ actuationId: a.actuationId, command: 'open' });
    const ack = await sw.call('actuate.ack', { actuationId: a.actuationId });
    expect(body(ack)).toMatchObject({ state: 'acknowledged', settled: true });
    expect(await paying).toBe('paid');
    expect(balanceOf(await s.ledger.requireAccount('switch-acct'))).toBe(5_000_000n);

    const silent = await s.devices!.commerce.requestActuation(sw.id, {
      command: 'open',
      priceMsat: msat(5_000_000),
      timeoutSeconds: 6,
    });
    const outcome = pay({ lnd: bob, request: silent.request }).then(
      () => 'paid',
      () => 'failed',
    );
    await sw.nextEvent('actuate'); // the device hears it but never acknowledges
    expect(await outcome).toBe('failed');
    await eventually(
      async () =>
        (await s.devices!.commerce.getActuation(silent.actuationId))?.state === 'refunded' ? true : undefined,
      15_000,
      'the refund',
    );
    expect(balanceOf(await s.ledger.requireAccount('switch-acct'))).toBe(5_000_000n);
  });

  it('an energy meter’s metered stream bills per Wh, and the consumer’s relay gets "stop" when credit lapses', async () => {
    const meter = await device('energy-seller');
    const relay = await device('energy-consumer');
    await s.ledger.transfer({
      debitAccountId: 'sys:operator',
      creditAccountId: 'energy-consumer',
      amount: msat(10_000),
      code: 'funding',
    }).durable;
    const stream = await s.streams!.create('energy-consumer', {
      payee: { accountId: 'energy-seller' },
      priceMsatPerUnit: msat(1000), // 1 sat per Wh
    });
    const report = await meter.call('meter.report', { streamId: stream.id, units: 3 });
    expect(report.ok).toBe(true);
    await eventually(
      () => (balanceOf(s.ledger.accountNow('energy-seller')!) === 3000n ? true : undefined),
      10_000,
      'the first 3 Wh billed',
    );
    // The relay's account cannot pay for 20 Wh more: the stream stops and both devices are told.
    await meter.call('meter.report', { streamId: stream.id, units: 20 });
    const stop = await relay.nextEvent('stop', 15_000);
    expect(JSON.parse(stop.b)).toMatchObject({ streamId: stream.id, reason: 'funds_exhausted' });
    expect(JSON.parse((await meter.nextEvent('stop', 15_000)).b)).toMatchObject({ streamId: stream.id });
    expect(balanceOf(await s.ledger.requireAccount('energy-seller'))).toBe(10_000n);
    expect(balanceOf(await s.ledger.requireAccount('energy-consumer'))).toBe(0n);
    // A device cannot report for a stream that does not pay it.
    const foreign = await relay.call('meter.report', { streamId: stream.id, units: 1 });
    expect(foreign.ok).toBe(false);
  });

  it('forged, replayed and tampered envelopes are rejected with their codes and change nothing', async () => {
    const meter = await device('meter-acct');
    await s.ledger.transfer({
      debitAccountId: 'sys:operator',
      creditAccountId: 'meter-acct',
      amount: msat(1_000_000),
      code: 'funding',
    }).durable;
    const ok = await meter.call('balance', '');
    expect(body(ok)).toMatchObject({ balanceMsat: '1000000' });
    // Replay: the same counter again.
    const replay = await meter.call('balance', '', { counter: meter.counter });
    expect(replay.c).toBe(meter.counter);
    expect(replay.ok).toBe(false);
    expect(body(replay)).toMatchObject({ code: 'REPLAYED' });
    // Forged: the meter's id, signed with another key.
    const forged = {
      ...signRequest({ c: 100, t: Math.floor(Date.now() / 1000), m: 'balance', p: '' }, '42'.repeat(32)),
      d: meter.id,
    };
    expect(await meter.send(forged, 100)).toEqual({
      error: expect.objectContaining({ code: 'BAD_SIGNATURE' }),
    });
    // Tampered: a genuine envelope whose params were changed after signing.
    const genuine = await meter.sign('invoice', { amountMsat: '1000' }, 101);
    expect(await meter.send({ ...genuine, p: '{"amountMsat":"999999"}' }, 101)).toEqual({
      error: expect.objectContaining({ code: 'BAD_SIGNATURE' }),
    });
    expect(s.devices!.registry.get(meter.id)?.lastCounter).toBe(meter.counter);
    // The broker refuses a client that claims the meter's id without its connect token.
    const impostor = mqttClient.connectAsync(mqtt.mqttUrl, {
      clientId: meter.id,
      username: String(Math.floor(Date.now() / 1000)),
      password: '00'.repeat(64),
      reconnectPeriod: 0,
    });
    await expect(impostor).rejects.toThrow(/Bad username or password|Not authorized|refused/i);
    expect(balanceOf(await s.ledger.requireAccount('meter-acct'))).toBe(1_000_000n);
    expect(s.devices!.registry.get(meter.id)?.lastCounter).toBe(meter.counter);
  });
});
