import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startDeviceTransports, type DeviceTransportHandle } from '../../../src/main.js';
import { backendFor, eventually } from '../../support/regtest.js';

let mosquitto: ChildProcess;
let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let transports: DeviceTransportHandle;
let device: VirtualDevice;
let port: number;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });

beforeAll(async () => {
  port = await freePort();
  // A real external broker (Debian's mosquitto; CI installs it), not the embedded one.
  mosquitto = spawn('mosquitto', ['-p', String(port)], { stdio: 'ignore' });
  backend = await backendFor('alice');
  const config = {
    ...DEFAULTS,
    dataDir: mkdtempSync(join(tmpdir(), 'coulomb-mosquitto-')),
    mqtt: { enabled: true, host: '127.0.0.1', port: 0, url: `mqtt://127.0.0.1:${port}` },
  };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }));
  transports = await eventually(
    () =>
      startDeviceTransports(config, stack.services.devices!, pino({ level: 'silent' })).catch(
        () => undefined,
      ),
    10_000,
    'mosquitto to accept connections',
  );
});
afterAll(async () => {
  await device?.close();
  await transports?.close();
  await stack?.close();
  await backend?.close();
  mosquitto?.kill('SIGTERM');
});

describe('devices through an external MQTT broker (Mosquitto)', () => {
  it('uses the broker by URL and answers a device with a signed response', async () => {
    expect(transports.embedded).toBe(false);
    expect(transports.mqttUrl).toBe(`mqtt://127.0.0.1:${port}`);
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
