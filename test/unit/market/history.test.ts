import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { TaskMarket } from '../../../src/market/tasks.js';
import type { Task } from '../../../src/market/types.js';
import { marketFixture } from './fixture.js';

type Fixture = Awaited<ReturnType<typeof marketFixture>>;

/** `n` tasks a millisecond apart; those for which `done(i)` holds are claimed, submitted, accepted. */
async function publish(m: Fixture, n: number, done: (i: number) => boolean): Promise<Task[]> {
  const out: Task[] = [];
  for (let i = 0; i < n; i++) {
    m.clock.offset += 1;
    const t = await m.market.publishTask('payer', {
      title: `#${i}`,
      capabilities: ['vision'],
      rewardMsat: msat(10),
      deadlineSeconds: 3600,
    });
    if (done(i)) {
      await m.market.claim(t.id, 'payee');
      await m.market.submit(t.id, 'payee', 'ok');
      out.push(await m.market.accept(t.id, 'payer'));
    } else out.push(t);
  }
  return out;
}

async function all(
  m: { market: TaskMarket },
  filter: Parameters<TaskMarket['list']>[0],
  limit: number,
): Promise<{ titles: string[]; pages: number }> {
  const titles: string[] = [];
  let before: string | undefined;
  let pages = 0;
  for (;;) {
    const page = await m.market.list(filter, { limit, ...(before ? { before } : {}) });
    pages += 1;
    titles.push(...page.tasks.map((t) => t.title));
    if (!page.next) return { titles, pages };
    before = page.next;
  }
}

describe('task history', () => {
  it('pages open tasks from memory and history from disk, newest first, by state and by account', async () => {
    const m = await marketFixture();
    const made = await publish(m, 12, (i) => i % 2 === 0);
    const titles = (pred: (t: Task) => boolean) =>
      made
        .filter(pred)
        .map((t) => t.title)
        .reverse();
    expect(await all(m, { state: 'completed' }, 4)).toEqual({
      titles: titles((t) => t.state === 'completed'),
      pages: 2,
    });
    expect((await all(m, { state: 'open' }, 4)).titles).toEqual(titles((t) => t.state === 'open'));
    expect((await all(m, { accountId: 'payee' }, 5)).titles).toEqual(titles((t) => t.state === 'completed'));
    expect((await all(m, {}, 5)).titles).toEqual(titles(() => true));
  });

  it('after a restart keeps only open tasks in memory and reads closed ones from disk', async () => {
    const m = await marketFixture();
    const made = await publish(m, 10, (i) => i < 4);
    const again = new TaskMarket(m.ledger, m.escrow, m.registry, () => {}, pino({ level: 'silent' }));
    await again.start();
    again.stop();
    expect(again.stats()).toEqual({ open: 6, closedInMemory: 0 });
    expect(await again.get(made[0]!.id)).toMatchObject({ state: 'completed', title: '#0' });
    expect(again.stats()).toEqual({ open: 6, closedInMemory: 1 });
    await expect(again.get('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({
      code: 'TASK_NOT_FOUND',
    });
  });

  it('after a restart reads reputations from disk when asked, none at start, and keeps counting', async () => {
    const m = await marketFixture();
    await publish(m, 3, () => true);
    let listed: string[] = [];
    const list = m.ledger.listRecords.bind(m.ledger);
    m.ledger.listRecords = async (prefix, options) => ((listed = [...listed, prefix]), list(prefix, options));
    const again = new TaskMarket(
      m.ledger,
      m.escrow,
      m.registry,
      () => {},
      pino({ level: 'silent' }),
      () => m.ledger.accountNow('payer')!.createdAt + m.clock.offset,
    );
    await again.start();
    again.stop();
    expect(listed).not.toContain('rep!');
    expect(await again.reputation('payee')).toMatchObject({ completed: 3 });
    const [t] = await publish(m, 1, () => false);
    await again.start();
    again.stop();
    await again.claim(t!.id, 'payee');
    await again.submit(t!.id, 'payee', 'done');
    await again.accept(t!.id, 'payer');
    expect(await again.reputation('payee')).toMatchObject({ completed: 4 });
    expect(await again.reputation('payer')).toMatchObject({ completed: 4 });
  });

  it('a selective history listing reads a bounded number of entries per page and goes on from its cursor', async () => {
    const m = await marketFixture();
    await publish(m, 2050, (i) => i === 0); // only the oldest is completed
    const first = await m.market.list({ state: 'completed' }, { limit: 10 });
    expect(first.tasks).toEqual([]);
    expect(first.next).toBeDefined();
    const second = await m.market.list({ state: 'completed' }, { limit: 10, before: first.next! });
    expect(second.tasks.map((t) => t.title)).toEqual(['#0']);
    expect(second.next).toBeUndefined();
  }, 30_000);
});
