import { describe, expect, it, vi } from 'vitest';
import { eventDigest, schnorrVerify, xOnlyOf, type EventEnvelope } from '../../../src/devices/envelope.js';
import { DeviceEvents } from '../../../src/devices/events.js';
import { DeviceRegistry } from '../../../src/devices/registry.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

const GATEWAY = '44'.repeat(32);
const DEVICE = xOnlyOf('55'.repeat(32));
const OTHER = xOnlyOf('66'.repeat(32));
const T0 = 1_763_700_000;

/** A gateway's device events over one ledger; `restart` builds them again from what is on disk. */
async function fixture() {
  let now = T0 * 1000;
  const f = await paymentsFixture({ now: () => now });
  await f.account('meter', 0n);
  const open = async () => {
    const registry = new DeviceRegistry(f.ledger, () => now);
    await registry.load();
    const events = new DeviceEvents(registry, f.ledger, GATEWAY, silentLog, () => now);
    await events.start(3600_000);
    const sent: EventEnvelope[] = [];
    events.addSink({ pushEvent: async (e) => void sent.push(e) });
    return { registry, events, sent };
  };
  const first = await open();
  await first.registry.register({ deviceId: DEVICE, accountId: 'meter', name: 'm' });
  await first.registry.register({ deviceId: OTHER, accountId: 'meter', name: 'o' });
  return { f, first, open, advance: (s: number) => (now += s * 1000) };
}

describe('device events outbox', () => {
  it('writes each event and its sequence number durably before any transport sees it', async () => {
    const { f, first } = await fixture();
    let durableWhenSent = false;
    first.events.addSink({
      pushEvent: async (e) => {
        durableWhenSent =
          (await f.store.records.get(`devevt!${DEVICE}!${String(e.n).padStart(12, '0')}`)) !== undefined;
      },
    });
    const e = await first.events.push(DEVICE, 'actuate', { command: 'open' });
    expect(durableWhenSent).toBe(true);
    expect(e.n).toBe(1);
    const { s, ...unsigned } = e;
    expect(schnorrVerify(eventDigest(unsigned), xOnlyOf(GATEWAY), s)).toBe(true);
    expect(first.sent).toEqual([e]);
  });

  it('after a restart, replays a device’s unexpired events, drops expired ones, and never reuses a number', async () => {
    const { f, first, open, advance } = await fixture();
    const short = await first.events.push(DEVICE, 'sold', { x: 1 }, 60);
    const long = await first.events.push(DEVICE, 'actuate', { x: 2 }, 600);
    await first.events.push(OTHER, 'stop', { x: 3 }, 600);
    first.events.stop();
    advance(120); // the first event has expired

    const again = await open();
    expect(await again.events.replay(DEVICE)).toBe(1);
    expect(again.sent).toEqual([long]);
    expect(await f.ledger.getRecord(`devevt!${DEVICE}!${String(short.n).padStart(12, '0')}`)).toBeUndefined();
    const next = await again.events.push(DEVICE, 'sold', { x: 4 });
    expect(next.n).toBe(3);
    expect(await again.events.replayAll()).toBe(3); // the device's two unexpired ones and OTHER's
    again.events.stop();
  });

  it('sends a device’s events in number order, whether a push or a replay comes first, and only once durable', async () => {
    const { f, first, open } = await fixture();
    await first.events.push(DEVICE, 'sold', { x: 1 }, 600);
    await first.events.push(DEVICE, 'sold', { x: 2 }, 600);
    first.events.stop();
    for (const pushFirst of [true, false]) {
      const again = await open();
      const seen: { n: number; durable: boolean }[] = [];
      again.events.addSink({
        pushEvent: async (e) => {
          const key = `devevt!${DEVICE}!${String(e.n).padStart(12, '0')}`;
          seen.push({ n: e.n, durable: f.store.records.has(key) });
        },
      });
      const both = pushFirst
        ? [again.events.push(DEVICE, 'stop', { x: 3 }, 600), again.events.replay(DEVICE)]
        : [again.events.replay(DEVICE), again.events.push(DEVICE, 'stop', { x: 3 }, 600)];
      await Promise.all(both);
      const ns = seen.map((x) => x.n);
      // Strictly increasing (a device drops anything not above the last it saw), nothing missing.
      expect(ns.every((n, i) => i === 0 || n > ns[i - 1]!)).toBe(true);
      expect(ns).toEqual(pushFirst ? [1, 2, 3] : [1, 2, 3, 4]); // the second round replays the first round’s event too
      expect(seen.every((x) => x.durable)).toBe(true);
      again.events.stop();
    }
  });

  it('writes each event at once: a slow transport delays no write, and no older copy of the device overwrites a newer one', async () => {
    const { f, first, open } = await fixture();
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    first.events.addSink({ pushEvent: () => blocked }); // a broker that does not acknowledge
    const p1 = first.events.push(DEVICE, 'sold', { x: 1 }, 600);
    const p2 = first.events.push(DEVICE, 'sold', { x: 2 }, 600);
    await first.registry.revoke(DEVICE);
    await f.ledger.flush();
    // Both events are on disk although neither could be sent yet.
    expect(f.store.records.has(`devevt!${DEVICE}!${String(2).padStart(12, '0')}`)).toBe(true);
    release();
    await Promise.all([p1, p2]);
    first.events.stop();
    const again = await open();
    expect(again.registry.get(DEVICE)).toMatchObject({ state: 'revoked', lastEventSeq: 2 });
    again.events.stop();
  });

  it('replays every device in order even when pushes come while replayAll is under way', async () => {
    const { first, open } = await fixture();
    for (const d of [DEVICE, OTHER]) {
      await first.events.push(d, 'sold', { x: 1 }, 600);
      await first.events.push(d, 'sold', { x: 2 }, 600);
    }
    first.events.stop();
    const again = await open();
    const seen = new Map<string, number[]>();
    again.events.addSink({
      pushEvent: async (e) => {
        seen.set(e.d, [...(seen.get(e.d) ?? []), e.n]);
        // Slow sends: the second device's push is written long before that device's turn.
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    await Promise.all([
      again.events.replayAll(),
      again.events.push(DEVICE, 'stop', { x: 3 }, 600),
      again.events.push(OTHER, 'stop', { x: 3 }, 600),
    ]);
    expect(seen.get(DEVICE)).toEqual([1, 2, 3]);
    expect(seen.get(OTHER)).toEqual([1, 2, 3]);
    again.events.stop();
  });

  it('does not let a transport that never answers hold a device’s later events up', async () => {
    const { f, first } = await fixture();
    const quick = new DeviceEvents(first.registry, f.ledger, GATEWAY, silentLog, Date.now, 50);
    const sent: number[] = [];
    quick.addSink({
      pushEvent: (e) => (e.n === 1 ? new Promise<void>(() => {}) : Promise.resolve(void sent.push(e.n))),
    });
    await quick.push(DEVICE, 'sold', { x: 1 }, 600); // its transport never acknowledges
    await quick.push(DEVICE, 'sold', { x: 2 }, 600);
    expect(sent).toEqual([2]);
    quick.stop();
  });

  it('recovers after a restart: each device once, at its first subscription, or all at once', async () => {
    const { first, open } = await fixture();
    const a = await first.events.push(DEVICE, 'actuate', { x: 1 }, 600);
    const b = await first.events.push(OTHER, 'actuate', { x: 2 }, 600);
    first.events.stop();

    const embedded = await open();
    let subscribed: (deviceId: string) => void = () => undefined;
    embedded.events.recover((onSubscribed) => (subscribed = onSubscribed));
    await new Promise((r) => setImmediate(r));
    expect(embedded.sent).toEqual([]); // nothing before a device subscribes
    subscribed(DEVICE);
    await vi.waitFor(() => expect(embedded.sent).toEqual([a]));
    subscribed(DEVICE); // a second subscription: the broker's session holds what it misses
    subscribed(OTHER);
    await vi.waitFor(() => expect(embedded.sent).toEqual([a, b]));
    await new Promise((r) => setImmediate(r));
    expect(embedded.sent).toHaveLength(2);
    embedded.events.stop();

    const external = await open();
    external.events.recover();
    await vi.waitFor(() => expect(new Set(external.sent)).toEqual(new Set([a, b])));
    external.events.stop();
  });
});
