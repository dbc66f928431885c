import { describe, expect, it } from 'vitest';
import { enrollDigest, schnorrSign, xOnlyOf } from '../../../src/devices/envelope.js';
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

  it('keeps enrollment codes on disk: a restart loads none, a code is read when used, and used once', async () => {
    const f = await paymentsFixture();
    await f.account('a', 0n);
    const before = new DeviceRegistry(f.ledger);
    await before.load();
    const { code } = await before.createEnrollment('a', 'sensor', 600);
    let listed: string[] = [];
    const list = f.ledger.listRecords.bind(f.ledger);
    f.ledger.listRecords = async (prefix, options) => ((listed = [...listed, prefix]), list(prefix, options));
    const registry = new DeviceRegistry(f.ledger);
    await registry.load();
    expect(listed).not.toContain('denr!');
    const keys = ['11', '22'].map((b) => b.repeat(32));
    const enroll = (key: string) =>
      registry.enroll({
        deviceId: xOnlyOf(key),
        code,
        signature: schnorrSign(enrollDigest(xOnlyOf(key), code), key),
      });
    const results = await Promise.allSettled(keys.map(enroll));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'ENROLLMENT_INVALID' });
    expect(registry.get(xOnlyOf(keys[0]!))).toMatchObject({ accountId: 'a', name: 'sensor' });
    await expect(enroll('33'.repeat(32))).rejects.toMatchObject({ code: 'ENROLLMENT_INVALID' });
    f.service.stop();
  });
});
