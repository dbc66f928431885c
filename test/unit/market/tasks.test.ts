import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { marketFixture } from './fixture.js';

describe('task market', () => {
  it('happy path: publish locks the reward, the agent claims and submits, acceptance pays and counts', async () => {
    const m = await marketFixture();
    const task = await m.market.publishTask('payer', {
      title: 'label 100 images',
      capabilities: ['vision'],
      rewardMsat: msat(200_000),
      deadlineSeconds: 600,
    });
    expect(m.avail('payer')).toBe(800_000n);
    expect(
      (await m.market.list({ state: 'open', capability: ['vision', 'labelling'] })).tasks.map((t) => t.id),
    ).toEqual([task.id]);
    expect((await m.market.list({ state: 'open', capability: ['audio'] })).tasks).toEqual([]);
    await expect(m.market.claim(task.id, 'other')).rejects.toMatchObject({ code: 'MISSING_CAPABILITY' });
    await expect(m.market.claim(task.id, 'payer')).rejects.toMatchObject({ code: 'TASK_FORBIDDEN' });
    await m.market.claim(task.id, 'payee');
    await expect(m.market.claim(task.id, 'payee')).rejects.toMatchObject({ code: 'TASK_INVALID_STATE' });
    await expect(m.market.submit(task.id, 'other', 'x')).rejects.toMatchObject({ code: 'TASK_FORBIDDEN' });
    await m.market.submit(task.id, 'payee', 'labels.csv');
    await expect(m.market.accept(task.id, 'other')).rejects.toMatchObject({ code: 'TASK_FORBIDDEN' });
    const done = await m.market.accept(task.id, 'payer');
    expect(done.state).toBe('completed');
    expect([m.bal('payer'), m.bal('payee')]).toEqual([800_000n, 200_000n]);
    expect(await m.market.reputation('payee')).toMatchObject({ completed: 1, disputed: 0, lost: 0 });
    expect(await m.market.reputation('payer')).toMatchObject({ completed: 1 });
    expect(m.taskEvents.some((e) => e.accountId === 'payee' && e.event.task.state === 'completed')).toBe(
      true,
    );
  });

  it('dispute path: a rejection goes to the operator, who decides; the loser’s reputation records it', async () => {
    const m = await marketFixture();
    const mk = async () => {
      const t = await m.market.publishTask('payer', {
        title: 'translate',
        rewardMsat: msat(100_000),
        deadlineSeconds: 600,
      });
      await m.market.claim(t.id, 'payee');
      await m.market.submit(t.id, 'payee', 'done');
      return m.market.reject(t.id, 'payer', 'wrong language');
    };
    const a = await mk();
    expect(a.state).toBe('disputed');
    expect(m.avail('payer')).toBe(900_000n); // still locked during the dispute
    expect((await m.market.resolve(a.id, 'agent')).resolvedFor).toBe('agent');
    expect(m.bal('payee')).toBe(100_000n);
    const b = await mk();
    await m.market.resolve(b.id, 'publisher');
    expect(m.avail('payer')).toBe(900_000n);
    expect(await m.market.reputation('payee')).toMatchObject({ completed: 0, disputed: 2, lost: 1 });
    expect(await m.market.reputation('payer')).toMatchObject({ disputed: 2, lost: 1 });
    await expect(m.market.resolve(b.id, 'agent')).rejects.toMatchObject({ code: 'TASK_INVALID_STATE' });
    expect(m.bal('payee')).toBe(100_000n);
  });

  it('unclaimed and late tasks refund the publisher; an unreviewed result is accepted', async () => {
    const m = await marketFixture();
    const unclaimed = await m.market.publishTask('payer', {
      title: 'a',
      rewardMsat: msat(1000),
      deadlineSeconds: 10,
    });
    const late = await m.market.publishTask('payer', {
      title: 'b',
      rewardMsat: msat(2000),
      deadlineSeconds: 10,
    });
    const reviewed = await m.market.publishTask('payer', {
      title: 'c',
      rewardMsat: msat(4000),
      deadlineSeconds: 10,
      reviewSeconds: 60,
    });
    await m.market.claim(late.id, 'payee');
    await m.market.claim(reviewed.id, 'payee');
    await m.market.submit(reviewed.id, 'payee', 'ok');
    m.clock.offset = 11_000;
    await expect(m.market.submit(late.id, 'payee', 'too late')).rejects.toMatchObject({
      code: 'DEADLINE_PASSED',
    });
    await m.market.sweep();
    expect((await m.market.get(unclaimed.id)).state).toBe('expired');
    expect((await m.market.get(late.id)).state).toBe('expired');
    expect((await m.market.get(reviewed.id)).state).toBe('submitted');
    expect(m.avail('payer')).toBe(1_000_000n - 4000n);
    expect((await m.market.reputation('payee')).late).toBe(1);
    m.clock.offset = 11_000 + 61_000;
    await m.market.sweep();
    expect((await m.market.get(reviewed.id)).state).toBe('completed');
    expect(m.bal('payee')).toBe(4000n);
  });

  it('the registry finds offers by capability, cheapest first', async () => {
    const m = await marketFixture();
    await m.registry.advertise('other', {
      title: 'cheap vision',
      description: '',
      capabilities: ['Vision'],
      priceMsat: msat(10),
      unit: 'request',
    });
    expect(m.registry.find({ capability: ['vision'] }).map((o) => o.accountId)).toEqual(['other', 'payee']);
    expect(m.registry.find({ capability: ['vision', 'labelling'] }).map((o) => o.accountId)).toEqual([
      'payee',
    ]);
    await expect(
      m.registry.advertise('other', {
        title: 't',
        description: '',
        capabilities: ['bad cap!'],
        priceMsat: msat(1),
        unit: 'request',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
