import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startDeviceTransports, type DeviceTransportHandle } from '../../../src/main.js';
import { startMosquitto, type RunningMosquitto } from '../../support/mosquitto.js';
import { backendFor } from '../../support/regtest.js';

let mosquitto: RunningMosquitto;
let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let transports: DeviceTransportHandle;
let device: VirtualDevice;

beforeAll(async () => {
  // A real external broker (Debian's mosquitto; CI installs it), not the embedded one.
  mosquitto = await startMosquitto();
  backend = await backendFor('alice');
  const config = {
    ...DEFAULTS,
    dataDir: mkdtempSync(join(tmpdir(), 'coulomb-mosquitto-')),
    mqtt: { enabled: true, host: '127.0.0.1', port: 0, url: mosquitto.url },
  };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }));
  transports = await startDeviceTransports(config, stack.services.devices!, pino({ level: 'silent' }));
});
afterAll(async () => {
  await device?.close();
  await transports?.close();
  await stack?.close();
  await backend?.close();
  await mosquitto?.stop();
});

describe('devices through an external MQTT broker (Mosquitto)', () => {
  it('uses the broker by URL and answers a device with a signed response', async () => {
    expect(transports.embedded).toBe(false);
    expect(transports.mqttUrl).toBe(mosquitto.url);
    const s = stack.services;
    await s.ledger.createAccount({ id: 'mosq-dev', kind: 'device', name: 'mosq-dev' }).durable;
    device = VirtualDevice.random(s.devices!.gatewayId);
    await s.devices!.registry.register({ deviceId: device.id, accountId: 'mosq-dev', name: 'via mosquitto' });
    await device.connect(transports.mqttUrl);
    const r = await device.call('balance', '');
    expect(r.ok).toBe(true);
    expect(JSON.parse(r.b)).toEqual({ balanceMsat: '0', availableMsat: '0' });
  });
});
