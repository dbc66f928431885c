import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { CrashAfterLock, marketFixture } from './fixture.js';

describe('publishing a task across a crash', () => {
  it('a retry with the same key after a crash right after the reward was locked does not lock it again', async () => {
    const store = new CrashAfterLock();
    const before = await marketFixture(store);
    const input = {
      title: 'label 100 images',
      capabilities: ['vision'],
      rewardMsat: msat(250_000),
      deadlineSeconds: 3600,
      idempotencyKey: 'publish-1',
    };
    // Whether the first attempt answered or died with its disk, the client retries after the restart.
    const first = await before.market.publishTask('payer', input).catch(() => undefined);
    before.escrow.stop();
    store.failNext = false; // the restarted gateway has a working disk

    const after = await marketFixture(store);
    const retried = await after.market.publishTask('payer', input);
    if (first) expect(retried.id).toBe(first.id);
    expect(after.avail('payer')).toBe(750_000n);
    const { escrows } = await after.escrow.list('payer');
    expect(escrows.map((e) => e.id)).toEqual([retried.escrowId]);
    expect((await after.market.get(retried.id)).escrowId).toBe(escrows[0]!.id);
    after.escrow.stop();
  });
});
