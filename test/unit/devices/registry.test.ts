import { describe, expect, it } from 'vitest';
import { xOnlyOf } from '../../../src/devices/envelope.js';
import { DeviceRegistry } from '../../../src/devices/registry.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

describe('device registry', () => {
  it('registers a device id once, even when two registrations of it arrive together', async () => {
    const f = await paymentsFixture();
    await f.account('a', 0n);
    await f.account('b', 0n);
    const registry = new DeviceRegistry(f.ledger);
    await registry.load();
    const id = xOnlyOf('5a'.repeat(32));
    const results = await Promise.allSettled([
      registry.register({ deviceId: id, accountId: 'a', name: 'first' }),
      registry.register({ deviceId: id, accountId: 'b', name: 'second' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_PARAMS' });
    expect(registry.get(id)).toMatchObject({ accountId: 'a', name: 'first' });
    // What is on disk agrees with what is in memory.
    const reloaded = new DeviceRegistry(f.ledger);
    await reloaded.load();
    expect(reloaded.get(id)).toMatchObject({ accountId: 'a', name: 'first' });
    f.service.stop();
  });
});
