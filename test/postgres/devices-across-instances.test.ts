import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { envOverrides, loadConfig } from '../../src/config/load.js';
import type { BridgeReply } from '../../src/devices/bridge.js';
import type { ResponseEnvelope } from '../../src/devices/envelope.js';
import { VirtualDevice } from '../../src/devices/simulator/virtual-device.js';
import { createLogger } from '../../src/logger.js';
import { openAccounts, type DeviceTransportHandle } from '../../src/main.js';
import { deviceTransportsOf } from '../support/device-instances.js';
import { FakeLightning } from '../support/fake-lightning.js';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto.js';
import { createTestDatabase } from '../support/postgres.js';
import { eventually } from '../support/regtest.js';

/**
 * Three gateway instances (the composition root's `openAccounts` and `startDeviceTransports`) on
 * one PostgreSQL database and one real Mosquitto: device requests reach the instances through the
 * MQTT 5 shared subscription, each handled by exactly one of them; answers and events reach the
 * device whichever instance produced them; a request counter taken through one instance is
 * refused by the others (REPLAYED), also when the same request reaches all of them at once.
 */

type Accounts = Awaited<ReturnType<typeof openAccounts>>;
interface Instance {
  name: string;
  accounts: Accounts;
  transports: DeviceTransportHandle;
  lnd: FakeLightning;
  /** The request counters this instance's bridge was handed, in order. */
  handled: number[];
}

const bodyOf = (reply: BridgeReply): { ok: boolean; code?: string } => {
  if (!('envelope' in reply)) throw new Error(`expected a signed answer, got ${JSON.stringify(reply)}`);
  const b = JSON.parse(reply.envelope.b) as { code?: string };
  return { ok: reply.envelope.ok, ...(reply.envelope.ok ? {} : { code: b.code! }) };
};

describe('devices across three instances on one Mosquitto and one PostgreSQL', () => {
  let mosquitto: RunningMosquitto;
  let dataDir: string;
  let device: VirtualDevice;
  const instances: Instance[] = [];
  const clients: MqttClient[] = [];

  const start = async (name: string, url: string): Promise<Instance> => {
    const config = loadConfig({
      env: envOverrides({
        COULOMB_DATABASE_URL: url,
        COULOMB_DATA_DIR: dataDir,
        COULOMB_MQTT_URL: mosquitto.url,
        COULOMB_MQTT_SHARE_GROUP: 'coulomb-test',
      }),
    });
    const lnd = new FakeLightning();
    const accounts = await openAccounts(config, lnd, createLogger('silent'), { leaderPollMs: 200 });
    const { transports, handled } = await deviceTransportsOf(config, accounts);
    const instance = { name, accounts, transports, lnd, handled };
    instances.push(instance);
    return instance;
  };

  beforeAll(async () => {
    mosquitto = await startMosquitto();
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-devshare-'));
    const url = await createTestDatabase(inject('postgresUrl'), 'devices_across');
    // One after another: the first applies the migrations and leads.
    for (const name of ['a', 'b', 'c']) await start(name, url);
    const a = instances[0]!.accounts.services;
    await a.ledger.ensure({ accounts: ['meter'] });
    await a.ledger.createAccount({ id: 'meter', kind: 'device', name: 'meter' }).durable;
    device = VirtualDevice.random(a.devices!.gatewayId);
    // Registered through the first instance after the others started: they read it on first use.
    await a.devices!.registry.register({ deviceId: device.id, accountId: 'meter', name: 'meter-1' });
    await device.connect(mosquitto.url);
  });
  afterAll(async () => {
    await device?.close();
    for (const c of clients) await c.endAsync();
    for (const i of instances) {
      await i.transports.close();
      await i.accounts.close();
    }
    await mosquitto?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const clearHandled = (): void => {
    for (const i of instances) i.handled.length = 0;
  };

  it('hands each request to exactly one instance, and the device gets every answer', async () => {
    expect(instances.map((i) => i.transports.embedded)).toEqual([false, false, false]);
    clearHandled();
    const counters: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await device.call('balance', '');
      expect(r.ok).toBe(true);
      expect(JSON.parse(r.b)).toEqual({ balanceMsat: '0', availableMsat: '0' });
      counters.push(r.c);
    }
    const all = instances.flatMap((i) => i.handled).sort((x, y) => x - y);
    expect(all).toEqual(counters);
    // The broker shares the subscription out: every instance answered some of them.
    for (const i of instances) expect(i.handled.length).toBeGreaterThan(0);
  });

  it('refuses on the other instances a request another instance accepted (REPLAYED)', async () => {
    clearHandled();
    const c = ++device.counter;
    const signed = await device.sign('invoice', { amountMsat: '5000' }, c);
    const first = (await device.send(signed, c)) as ResponseEnvelope;
    expect(first.ok).toBe(true);
    const [taker, ...others] = [...instances].sort((x, y) => y.handled.length - x.handled.length);
    expect(taker!.handled).toEqual([c]);
    for (const other of others) {
      expect(other.handled).toEqual([]);
      // The same signed request handed to another instance (its HTTP endpoint takes the same path).
      expect(bodyOf(await other.accounts.services.devices!.bridge.handle(signed))).toEqual({
        ok: false,
        code: 'REPLAYED',
      });
    }
    // And published again: whichever instance gets it refuses it.
    const again = (await device.send(signed, c)) as ResponseEnvelope;
    expect(again.ok).toBe(false);
    expect(JSON.parse(again.b)).toMatchObject({ code: 'REPLAYED' });
    // One invoice was made, by the instance that accepted the request.
    expect(instances.map((i) => i.lnd.invoices.size).reduce((x, y) => x + y, 0)).toBe(1);
    expect(taker!.lnd.invoices.size).toBe(1);
  });

  it('accepts one of the same request sent to all instances at once, round after round', async () => {
    for (let round = 0; round < 10; round++) {
      const c = ++device.counter;
      const signed = await device.sign('balance', '', c);
      const replies = await Promise.all(
        instances.flatMap((i) => [
          i.accounts.services.devices!.bridge.handle(signed),
          i.accounts.services.devices!.bridge.handle(signed),
        ]),
      );
      const bodies = replies.map(bodyOf);
      expect(bodies.filter((b) => b.ok)).toHaveLength(1);
      expect(bodies.filter((b) => !b.ok)).toEqual(Array(5).fill({ ok: false, code: 'REPLAYED' }));
    }
  });

  it('accepts one of the same request published many times through the broker', async () => {
    const answers: ResponseEnvelope[] = [];
    const watcher = await mqtt.connectAsync(mosquitto.url, { clientId: `watch-${device.id.slice(0, 8)}` });
    clients.push(watcher);
    watcher.on('message', (_topic, payload) =>
      answers.push(JSON.parse(payload.toString()) as ResponseEnvelope),
    );
    await watcher.subscribeAsync(`coulomb/d/${device.id}/res`, { qos: 1 });
    clearHandled();
    const c = ++device.counter;
    const signed = JSON.stringify(await device.sign('balance', '', c));
    await Promise.all(
      Array.from({ length: 9 }, () => watcher.publishAsync(`coulomb/d/${device.id}/req`, signed, { qos: 1 })),
    );
    await eventually(() => (answers.length >= 9 ? true : undefined), 30_000, 'nine answers');
    expect(answers.map((a) => a.c)).toEqual(Array(9).fill(c));
    expect(answers.filter((a) => a.ok)).toHaveLength(1);
    expect(answers.filter((a) => !a.ok).map((a) => (JSON.parse(a.b) as { code: string }).code)).toEqual(
      Array(8).fill('REPLAYED'),
    );
    // They went to several instances, each message to one.
    expect(instances.flatMap((i) => i.handled)).toEqual(Array(9).fill(c));
    expect(instances.filter((i) => i.handled.length > 0).length).toBeGreaterThan(1);
  });

  it('delivers events to the device from whichever instance pushes them, numbered across instances', async () => {
    const pushed = [];
    for (const [k, i] of instances.entries())
      pushed.push(await i.accounts.services.devices!.events.push(device.id, 'ping', { from: i.name, k }));
    expect(pushed.map((e) => e.n)).toEqual([1, 2, 3]);
    const received = [];
    for (let k = 0; k < 3; k++) received.push(await device.nextEvent('ping'));
    expect(received.map((e) => [e.n, (JSON.parse(e.b) as { from: string }).from])).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
  });
});
