import { pino } from 'pino';
import { DeviceBridge } from '../../src/devices/bridge.js';
import { DeviceCommerce } from '../../src/devices/commerce.js';
import { xOnlyOf } from '../../src/devices/envelope.js';
import { DeviceEvents } from '../../src/devices/events.js';
import { accountOperations } from '../../src/devices/operations.js';
import { DeviceRegistry } from '../../src/devices/registry.js';
import { EscrowService } from '../../src/escrow/service.js';
import type { AccountServices } from '../../src/http/routes/services.js';
import type { LightningBackend } from '../../src/lightning/backend.js';
import { ServiceRegistry } from '../../src/market/registry.js';
import { TaskMarket } from '../../src/market/tasks.js';
import { StreamReceiver, StreamsService } from '../../src/streams/index.js';
import type { paymentsFixture } from './payments-fixture.js';

/**
 * The feature services over a payments fixture, wired as the composition root wires them:
 * escrow, the task market, streams, and the device registry, events, commerce and bridge
 * (with the account and commerce methods). `accountServices` mounts them all on `accountsApp`.
 */
export async function featureServices(
  f: Awaited<ReturnType<typeof paymentsFixture>>,
  options: { backend?: LightningBackend; gatewayKey?: string; now?: () => number } = {},
) {
  const log = pino({ level: 'silent' });
  const gatewayKey = options.gatewayKey ?? '88'.repeat(32);
  const publish = (id: string, e: Parameters<typeof f.events.publish>[1]) => f.events.publish(id, e);
  const escrow = new EscrowService(f.ledger, options.backend ?? f.lightning, f.service, publish, log, {
    blockPollMs: 3600_000,
  });
  await escrow.start();
  const registry = new ServiceRegistry(f.ledger);
  await registry.load();
  const market = new TaskMarket(f.ledger, escrow, registry, publish, log);
  await market.start();
  const receiver = new StreamReceiver({ ledger: f.ledger, nodeId: () => f.service.nodeId, publish, log });
  const streams = new StreamsService({
    ledger: f.ledger,
    payments: f.service,
    publish,
    log,
    inboxes: receiver,
  });
  await streams.start();
  const devices = new DeviceRegistry(f.ledger, options.now);
  await devices.load();
  const events = new DeviceEvents(devices, f.ledger, gatewayKey, log);
  await events.start(3600_000);
  const commerce = new DeviceCommerce({
    ledger: f.ledger,
    payments: f.service,
    escrow,
    streams,
    registry: devices,
    events,
    bus: f.events,
    log,
  });
  await commerce.start();
  const bridge = new DeviceBridge(
    devices,
    f.ledger,
    gatewayKey,
    { ...accountOperations({ ledger: f.ledger, payments: f.service }), ...commerce.operations() },
    log,
  );
  const accountServices: Partial<AccountServices> = {
    escrow,
    market,
    registry,
    streams,
    receiver,
    devices: { bridge, registry: devices, gatewayId: xOnlyOf(gatewayKey), events, commerce },
  };
  const stop = async () => {
    commerce.stop();
    events.stop();
    market.stop();
    escrow.stop();
    await streams.stop();
  };
  return {
    escrow,
    market,
    registry,
    receiver,
    streams,
    devices,
    events,
    commerce,
    bridge,
    accountServices,
    stop,
  };
}
