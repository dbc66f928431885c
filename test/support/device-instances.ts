import type { Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/logger.js';
import { openAccounts, startDeviceTransports, type DeviceTransportHandle } from '../../src/main.js';

/**
 * One gateway instance's devices on a shared broker, for tests of several instances: its device
 * transports (the leader replays the outbox), and the counters of the requests its bridge was
 * handed, in order (which instance the broker gave each request to).
 */
export async function deviceTransportsOf(
  config: Config,
  accounts: Awaited<ReturnType<typeof openAccounts>>,
): Promise<{ transports: DeviceTransportHandle; handled: number[] }> {
  const handled: number[] = [];
  const bridge = accounts.services.devices!.bridge;
  const handle = bridge.handle.bind(bridge);
  bridge.handle = (raw) => {
    handled.push(typeof raw === 'object' && raw !== null ? Number((raw as { c?: unknown }).c) : NaN);
    return handle(raw);
  };
  const transports = await startDeviceTransports(
    config,
    accounts.services.devices!,
    createLogger('silent'),
    accounts.leadership,
  );
  return { transports, handled };
}
