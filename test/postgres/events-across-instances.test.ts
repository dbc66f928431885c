import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EventBus } from '../../src/payments/events.js';
import type { AccountEvent } from '../../src/payments/types.js';
import { PostgresEventRelay } from '../../src/storage/postgres/postgres-event-relay.js';
import { createTestDatabase } from '../support/postgres.js';

/** Polls until `probe` holds (a liveness bound against a hung run, not a measurement). */
async function until(probe: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What one subscriber received, and a promise for the first event matching `is`. */
function recorder(): {
  got: AccountEvent[];
  listener: (e: AccountEvent) => void;
  next(is: (e: AccountEvent) => boolean): Promise<AccountEvent>;
} {
  const got: AccountEvent[] = [];
  const waiting: { is: (e: AccountEvent) => boolean; resolve: (e: AccountEvent) => void }[] = [];
  return {
    got,
    listener(e) {
      got.push(e);
      for (const w of [...waiting])
        if (w.is(e)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve(e);
        }
    },
    next(is) {
      const seen = got.find(is);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiting.push({ is, resolve }));
    },
  };
}

const alert = (code: string): AccountEvent => ({ type: 'alert', accountId: 'alice', code, message: code });
const isAlert =
  (code: string) =>
  (e: AccountEvent): boolean =>
    e.type === 'alert' && e.code === code;

describe('account events across instances of one PostgreSQL database', () => {
  let url: string;
  let admin: postgres.Sql;

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'events_multi');
    admin = postgres(url, { max: 1, onnotice: false });
  });
  afterAll(async () => {
    await admin.end();
  });

  const relaySessions = async (): Promise<{ pid: number; query: string }[]> =>
    admin<{ pid: number; query: string }[]>`
      SELECT pid, query FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = 'coulomb-events'`;

  it('an event published on one instance reaches a subscriber on the other once, and its own subscribers once', async () => {
    const [busA, busB] = [new EventBus(), new EventBus()];
    const relayA = await PostgresEventRelay.open(url, busA);
    const relayB = await PostgresEventRelay.open(url, busB);
    expect(relayA.instanceId).not.toBe(relayB.instanceId);

    // Nobody listens anywhere: B builds no balance event and relays nothing.
    expect(busB.wants('alice', 'balance')).toBe(false);
    const onA = recorder();
    const onAOnly = recorder();
    const onB = recorder();
    const onBOnly = recorder();
    busA.subscribe('alice', onA.listener, { everyInstance: true });
    busA.subscribe('alice', onAOnly.listener);
    busB.subscribe('alice', onB.listener, { everyInstance: true });
    busB.subscribe('alice', onBOnly.listener);
    await until(() => relayB.wants('alice', 'balance'), "A's interest in alice to reach B");
    expect(relayB.wants('bob', 'balance')).toBe(false);

    const payment = {
      type: 'payment',
      payment: { id: 'p1', accountId: 'alice', amountMsat: 21_000n, feeMsat: 3n, status: 'succeeded' },
    } as unknown as AccountEvent;
    busB.publish('alice', payment);
    busB.publish('alice', alert('after'));
    // B's events reach A in the order published: once the later one is there, the first is too.
    await onA.next(isAlert('after'));
    expect(onA.got).toEqual([payment, alert('after')]);
    expect(onB.got).toEqual([payment, alert('after')]);
    expect(onBOnly.got).toEqual([payment, alert('after')]);
    // A subscriber to its own instance's events alone hears nothing from B.
    expect(onAOnly.got).toEqual([]);

    // And the other way round, after a batch: order kept, nothing twice on either side.
    await until(() => relayA.wants('alice', 'alert'), "B's interest in alice to reach A");
    for (let i = 0; i < 200; i += 1) busA.publish('alice', alert(`n${i}`));
    busA.publish('alice', alert('last'));
    await onB.next(isAlert('last'));
    const codes = (r: { got: AccountEvent[] }): string[] =>
      r.got.map((e) => (e.type === 'alert' ? e.code : e.type));
    const expected = ['payment', 'after', ...Array.from({ length: 200 }, (_, i) => `n${i}`), 'last'];
    expect(codes(onA)).toEqual(expected);
    expect(codes(onB)).toEqual(expected);
    expect(codes(onAOnly)).toEqual(expected.slice(2));
    await Promise.all([relayA.close(), relayB.close()]);
  });

  it('an event larger than one NOTIFY payload arrives intact', async () => {
    const [busA, busB] = [new EventBus(), new EventBus()];
    const relayA = await PostgresEventRelay.open(url, busA);
    const relayB = await PostgresEventRelay.open(url, busB);
    const onA = recorder();
    busA.subscribeAll((_id, e) => onA.listener(e), ['task'], { everyInstance: true });
    await until(() => relayB.wants('carol', 'task'), "A's interest in tasks to reach B");
    expect(relayB.wants('carol', 'escrow')).toBe(false);

    // ~60 kB of text with two- and four-byte characters, cut into frames between characters.
    const description = 'é€😀 Größe '.repeat(4_000);
    const big: AccountEvent = {
      type: 'task',
      task: { id: 't1', description, rewardMsat: 123_456_789_012_345n, tags: ['a', 'b'] },
    };
    busB.publish('carol', big);
    busB.publish('carol', { type: 'task', task: { id: 't2' } });
    await onA.next((e) => e.type === 'task' && (e['task'] as { id: string }).id === 't2');
    expect(onA.got).toEqual([big, { type: 'task', task: { id: 't2' } }]);
    expect(Buffer.byteLength(description)).toBeGreaterThan(7 * 8000);
    await Promise.all([relayA.close(), relayB.close()]);
  });

  it('a listening connection that drops comes back and relays again', async () => {
    const [busA, busB] = [new EventBus(), new EventBus()];
    const relayA = await PostgresEventRelay.open(url, busA);
    const [listenA] = (await relaySessions()).filter((s) => /^listen/i.test(s.query));
    expect(listenA).toBeDefined();
    const relayB = await PostgresEventRelay.open(url, busB);
    const onA = recorder();
    busA.subscribe('alice', onA.listener, { everyInstance: true });
    await until(() => relayB.wants('alice', 'alert'), "A's interest to reach B");

    await admin`SELECT pg_terminate_backend(${listenA!.pid})`;
    // Events during the gap are lost (live streams only); once A listens again B's reach it.
    let probe = 0;
    await until(async () => {
      if (onA.got.some((e) => e.type === 'alert' && e.code.startsWith('probe'))) return true;
      busB.publish('alice', alert(`probe${(probe += 1)}`));
      return false;
    }, 'A to listen again');
    busB.publish('alice', alert('again'));
    busB.publish('alice', alert('sentinel'));
    await onA.next(isAlert('sentinel'));
    expect(onA.got.filter(isAlert('again'))).toHaveLength(1);
    expect((await relaySessions()).some((s) => s.pid === listenA!.pid)).toBe(false);
    await Promise.all([relayA.close(), relayB.close()]);
  });

  it('leaves no connection, timer or listener behind once closed', async () => {
    const kinds = (): Record<string, number> => {
      const n: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) if (r !== 'PromiseResolve') n[r] = (n[r] ?? 0) + 1;
      return n;
    };
    await until(async () => (await relaySessions()).length === 0, 'the earlier tests’ sessions to end');
    const before = kinds();
    const [busA, busB] = [new EventBus(), new EventBus()];
    const relayA = await PostgresEventRelay.open(url, busA);
    const relayB = await PostgresEventRelay.open(url, busB);
    const onA = recorder();
    const off = busA.subscribe('alice', onA.listener, { everyInstance: true });
    await until(() => relayB.wants('alice', 'alert'), "A's interest to reach B");
    busB.publish('alice', alert('one'));
    await onA.next(isAlert('one'));
    expect(relayA.peerCount).toBe(1);

    await relayA.close();
    // B forgets A (its goodbye), so B no longer relays alice's events.
    await until(() => relayB.peerCount === 0, 'B to forget A');
    expect(busB.wants('alice', 'alert')).toBe(false);
    // A's bus no longer relays; a subscriber there still hears A's own events.
    busA.publish('alice', alert('local'));
    expect(onA.got.map((e) => (e.type === 'alert' ? e.code : e.type))).toEqual(['one', 'local']);
    off();
    expect(busA.interest()).toEqual({ all: false, types: [], accounts: [] });
    await relayB.close();
    await until(async () => (await relaySessions()).length === 0, 'the relays’ sessions to end');
    // Nothing more of any kind than before (a timer of the earlier tests may have run out since).
    const after = kinds();
    for (const [kind, n] of Object.entries(after))
      expect({ kind, n }).toEqual({ kind, n: Math.min(n, before[kind] ?? 0) });
  });
});
