import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import { afterAll, describe, expect, it } from 'vitest';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';
import { GatewayProcess } from '../../support/gateway-process.js';
import { eventually, rawLnd } from '../../support/regtest.js';

const OPERATOR = 'device-restart-operator-key-0123456789';
const gateway = new GatewayProcess(mkdtempSync(join(tmpdir(), 'coulomb-device-restart-')), OPERATOR);
let device: VirtualDevice | undefined;
afterAll(async () => {
  await device?.close().catch(() => undefined);
  await gateway.kill9();
});

describe('device events across a gateway crash', () => {
  it('an offline device gets the actuate event pushed before kill -9, and its acknowledgement settles the payment', async () => {
    let url = await gateway.start();
    expect(
      (await gateway.api(url, 'POST', '/v1/accounts', { id: 'r-switch', kind: 'device', name: 'switch' }))
        .status,
    ).toBe(201);
    const gatewayId = (await gateway.api(url, 'GET', '/v1/device/gateway')).json['gatewayId'] as string;
    device = VirtualDevice.random(gatewayId);
    expect(
      (
        await gateway.api(url, 'POST', '/v1/devices', {
          deviceId: device.id,
          accountId: 'r-switch',
          name: 'switch',
        })
      ).status,
    ).toBe(201);
    // The device has a persistent session, then goes offline.
    await device.connect(await gateway.mqttUrl());
    await device.close();

    const asked = await gateway.api(url, 'POST', `/v1/devices/${device.id}/actuations`, {
      command: 'open',
      priceMsat: '3000000',
      timeoutSeconds: 120,
    });
    expect(asked.status).toBe(201);
    const actuationId = asked.json['actuationId'] as string;
    const paying = pay({ lnd: await rawLnd('bob'), request: asked.json['request'] as string }).then(
      () => 'paid',
      () => 'failed',
    );
    // Held by the gateway: the actuate event has been pushed to the (offline) device.
    await eventually(
      async () =>
        (await gateway.api(url, 'GET', `/v1/actuations/${actuationId}`)).json['state'] === 'sent'
          ? true
          : undefined,
      30_000,
      'the HTLC to be held',
    );

    await gateway.kill9();
    url = await gateway.start();
    await device.connect(await gateway.mqttUrl());
    const actuate = await device.nextEvent('actuate', 20_000);
    expect(JSON.parse(actuate.b)).toMatchObject({ actuationId, command: 'open' });
    const ack = await device.call('actuate.ack', { actuationId });
    expect(JSON.parse(ack.b)).toMatchObject({ state: 'acknowledged', settled: true });
    expect(await paying).toBe('paid');
  });
});
