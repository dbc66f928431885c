import { createServer } from 'node:net';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { startEmbeddedBroker } from '../../../src/devices/mqtt/broker.js';

const DEVICE = 'ab'.repeat(32);
const OTHER = 'cd'.repeat(32);

describe('embedded MQTT broker', () => {
  it('says clearly when its port is taken', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const port = (taken.address() as { port: number }).port;
    await expect(startEmbeddedBroker('127.0.0.1', port, 'pw', () => true)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('COULOMB_MQTT_PORT') as string,
    });
    taken.close();
  });

  it('admits devices with a valid token only, each to its own topics; the gateway client everywhere', async () => {
    const broker = await startEmbeddedBroker(
      '127.0.0.1',
      0,
      'gateway-secret',
      (id, user, pass) => id === DEVICE && user === '1' && pass === 'token',
    );
    try {
      await expect(
        mqtt.connectAsync(broker.url, {
          clientId: DEVICE,
          username: '1',
          password: 'wrong',
          reconnectPeriod: 0,
        }),
      ).rejects.toThrow();
      await expect(
        mqtt.connectAsync(broker.url, {
          clientId: 'gw',
          username: broker.gatewayUsername,
          password: 'nope',
          reconnectPeriod: 0,
        }),
      ).rejects.toThrow();
      const gw = await mqtt.connectAsync(broker.url, {
        clientId: 'gw',
        username: broker.gatewayUsername,
        password: broker.gatewayPassword,
      });
      const dev = await mqtt.connectAsync(broker.url, { clientId: DEVICE, username: '1', password: 'token' });
      // Its own topics are granted; another device's are refused.
      const own = await dev.subscribeAsync(`coulomb/d/${DEVICE}/res`, { qos: 1 });
      expect(own[0]!.qos).toBe(1);
      await expect(dev.subscribeAsync(`coulomb/d/${OTHER}/res`, { qos: 1 })).rejects.toThrow(
        /Subscribe error/,
      );
      const seen: string[] = [];
      await gw.subscribeAsync('coulomb/d/+/req', { qos: 1 });
      gw.on('message', (topic) => seen.push(topic));
      await dev.publishAsync(`coulomb/d/${DEVICE}/req`, '{}', { qos: 1 });
      await dev.publishAsync(`coulomb/d/${OTHER}/req`, '{}', { qos: 0 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 200));
      expect(seen).toEqual([`coulomb/d/${DEVICE}/req`]);
      await dev.endAsync();
      await gw.endAsync();
    } finally {
      await broker.close();
    }
  });

  it("tells the gateway when a device's connection opens and closes, not the gateway's own", async () => {
    const presence: [string, boolean][] = [];
    let closed: () => void = () => undefined;
    const broker = await startEmbeddedBroker(
      '127.0.0.1',
      0,
      'gateway-secret',
      (id) => id === DEVICE,
      (id, up) => {
        presence.push([id, up]);
        if (!up) closed();
      },
    );
    try {
      const gw = await mqtt.connectAsync(broker.url, {
        clientId: 'gw',
        username: broker.gatewayUsername,
        password: broker.gatewayPassword,
      });
      const dev = await mqtt.connectAsync(broker.url, { clientId: DEVICE, username: '1', password: 'token' });
      // A round trip through the broker: the device's connection is ready by then.
      await dev.subscribeAsync(`coulomb/d/${DEVICE}/res`, { qos: 1 });
      expect(presence).toEqual([[DEVICE, true]]);
      expect(broker.counts().devicesConnected).toBe(1);
      const gone = new Promise<void>((r) => (closed = r));
      await dev.endAsync();
      await gone;
      expect(presence).toEqual([
        [DEVICE, true],
        [DEVICE, false],
      ]);
      await gw.endAsync();
    } finally {
      await broker.close();
    }
  });

  it('tells the gateway when a device subscribes to its own event topic', async () => {
    const broker = await startEmbeddedBroker(
      '127.0.0.1',
      0,
      'gateway-secret',
      (id) => id === DEVICE || id === OTHER,
    );
    const seen: string[] = [];
    try {
      // A device that subscribes while the gateway is still starting is handed over when it listens.
      const early = await mqtt.connectAsync(broker.url, {
        clientId: OTHER,
        username: '1',
        password: 'token',
      });
      await early.subscribeAsync(`coulomb/d/${OTHER}/evt`, { qos: 1 });
      broker.onDeviceSubscribed((id) => seen.push(id));
      expect(seen).toEqual([OTHER]);
      seen.length = 0;
      await early.endAsync();
      const gw = await mqtt.connectAsync(broker.url, {
        clientId: 'gw',
        username: broker.gatewayUsername,
        password: broker.gatewayPassword,
      });
      await gw.subscribeAsync('coulomb/d/+/evt', { qos: 1 });
      const dev = await mqtt.connectAsync(broker.url, { clientId: DEVICE, username: '1', password: 'token' });
      await dev.subscribeAsync(`coulomb/d/${DEVICE}/res`, { qos: 1 });
      expect(seen).toEqual([]);
      await dev.subscribeAsync(`coulomb/d/${DEVICE}/evt`, { qos: 1 });
      expect(seen).toEqual([DEVICE]);
      await dev.endAsync();
      await gw.endAsync();
    } finally {
      await broker.close();
    }
  });
});
