import { describe, expect, it } from 'vitest';
import { MppGate } from '../../../src/proxy/mpp.js';
import { FakeLightning } from '../../support/fake-lightning.js';
import { MemoryRecords } from '../../support/memory-records.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const SESSION = 'ab'.repeat(32);

/** Two instances' MPP gates over one store of session records, on an injected clock. */
async function twoGates(maxAgeMs: number | undefined) {
  const records = new MemoryRecords();
  const clock = { t: 1_000_000 };
  const lightning = new FakeLightning();
  const f = await paymentsFixture({}, undefined, lightning);
  const gate = () =>
    new MppGate({
      secret: Buffer.alloc(32, 2),
      realm: 'test',
      backend: lightning,
      invoices: f.service,
      records,
      now: () => clock.t,
      ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
    });
  await records.putRecords([
    { key: `mppses!${SESSION}`, value: JSON.stringify({ service: 'svc', state: 'open', openedAt: clock.t }) },
  ]);
  return { records, clock, a: gate(), b: gate(), stop: () => f.service.stop() };
}

describe('MPP sessions on a store shared by several instances', () => {
  it('a session closed through another instance is closed here once the cached record is maxAgeMs old', async () => {
    const { records, clock, a, b, stop } = await twoGates(1000);
    expect((await a.session(SESSION))?.state).toBe('open');
    const reads = records.reads;
    expect((await a.session(SESSION))?.state).toBe('open'); // within the bound: from the cache
    expect(records.reads).toBe(reads);
    await b.markClosed(SESSION);
    clock.t += 1000;
    expect((await a.session(SESSION))?.state).toBe('closed');
    stop();
  });

  it('one process owning its store: a cached session is never read again, however old', async () => {
    const { records, clock, a, stop } = await twoGates(undefined);
    await a.session(SESSION);
    const reads = records.reads;
    clock.t += 3600_000;
    await a.session(SESSION);
    expect(records.reads).toBe(reads);
    stop();
  });
});
