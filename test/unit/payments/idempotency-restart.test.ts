import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const DEST = '03' + '55'.repeat(32);

describe('payment idempotency keys across a restart', () => {
  it('replays a keysend after a restart and refuses another request under its key', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('a', 100_000n);
    const input = { destination: DEST, amountMsat: msat(1_000), maxFeeMsat: msat(10), idempotencyKey: 'ks' };
    const first = await f.service.keysend('a', input);
    f.service.stop();
    const again = await paymentsFixture({}, store, f.lightning);
    expect(await again.service.keysend('a', input)).toMatchObject({ id: first.id, status: 'succeeded' });
    await expect(again.service.keysend('a', { ...input, amountMsat: msat(1_001) })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
    });
    expect(f.lightning.payCalls).toBe(1);
    again.service.stop();
  });

  it('still answers keys of payments recorded before keys had their own records', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('a', 100_000n);
    const first = await f.service.keysend('a', {
      destination: DEST,
      amountMsat: msat(1_000),
      maxFeeMsat: msat(10),
      idempotencyKey: 'old',
    });
    f.service.stop();
    // What an older version left on disk: the payment names its key, no key record exists, and
    // no payment index either.
    const older = /^(idem!|payopen!|payby!|payat!|payhash!|payidx!)/;
    for (const k of [...store.records.keys()]) if (older.test(k)) store.records.delete(k);
    const again = await paymentsFixture({}, store, f.lightning);
    const retry = await again.service.keysend('a', {
      destination: DEST,
      amountMsat: msat(1_000),
      maxFeeMsat: msat(10),
      idempotencyKey: 'old',
    });
    expect(retry.id).toBe(first.id);
    expect(f.lightning.payCalls).toBe(1);
    // Only for a request of its own kind: an invoice under that key is another request.
    await expect(
      again.service.createInvoice('a', { amountMsat: msat(5_000), idempotencyKey: 'old' }),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    again.service.stop();
  });
});
