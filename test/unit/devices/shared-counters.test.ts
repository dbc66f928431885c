import { describe, expect, it } from 'vitest';
import { DeviceBridge } from '../../../src/devices/bridge.js';
import { DeviceEvents } from '../../../src/devices/events.js';
import type { CounterClaim, DeviceCounterStore } from '../../../src/devices/counters.js';
import { signRequest, xOnlyOf, type ResponseEnvelope } from '../../../src/devices/envelope.js';
import { accountOperations } from '../../../src/devices/operations.js';
import { DeviceRegistry } from '../../../src/devices/registry.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

const GATEWAY = '44'.repeat(32);
const DEVICE = '56'.repeat(32);
const T0 = 1_763_700_000;

/**
 * The counter store several instances share, in memory: `advance` answers only when the test
 * lets it (`release`), so a request can be caught between its claim and its answer.
 */
class GatedCounters implements DeviceCounterStore {
  readonly stored = new Map<string, number>();
  readonly asked: number[] = [];
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  fail = false;

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open();
  }

  readonly revoked = new Set<string>();
  readonly events = new Map<string, number>();

  async advance(deviceId: string, counter: number): Promise<CounterClaim> {
    this.asked.push(counter);
    await this.gate;
    if (this.fail) throw new Error('connection lost');
    const last = this.stored.get(deviceId) ?? 0;
    const revoked = this.revoked.has(deviceId);
    if (counter <= last || revoked) return { accepted: false, last, revoked };
    this.stored.set(deviceId, counter);
    return { accepted: true };
  }

  async nextEventSeq(deviceId: string, atLeast: number): Promise<number> {
    await this.gate;
    const n = Math.max((this.events.get(deviceId) ?? 0) + 1, atLeast);
    this.events.set(deviceId, n);
    return n;
  }

  async revoke(deviceId: string): Promise<void> {
    this.revoked.add(deviceId);
  }
}

/** Two instances (each its own registry and bridge: its own memory) on one ledger and one counter store. */
async function twoInstances() {
  const f = await paymentsFixture({ now: () => T0 * 1000 });
  await f.account('meter', 1_000_000n);
  const counters = new GatedCounters();
  const instance = async () => {
    const registry = new DeviceRegistry(f.ledger, () => T0 * 1000, counters);
    await registry.load();
    const events = new DeviceEvents(registry, f.ledger, GATEWAY, silentLog, () => T0 * 1000);
    const bridge = new DeviceBridge(
      registry,
      f.ledger,
      GATEWAY,
      accountOperations({ ledger: f.ledger, payments: f.service }),
      silentLog,
      { now: () => T0 * 1000 },
    );
    return { registry, bridge, events };
  };
  const first = await instance();
  await first.registry.register({ deviceId: xOnlyOf(DEVICE), accountId: 'meter', name: 'meter-1' });
  const second = await instance(); // loads the device from the store
  const request = (c: number, m: string, p: object | string = '', k?: string) =>
    JSON.parse(
      JSON.stringify(
        signRequest(
          { c, t: T0, m, p: typeof p === 'string' ? p : JSON.stringify(p), ...(k ? { k } : {}) },
          DEVICE,
        ),
      ),
    ) as unknown;
  return { ...f, counters, first, second, request };
}

function answer(r: Awaited<ReturnType<DeviceBridge['handle']>>): { ok: boolean; b: Record<string, unknown> } {
  if (!('envelope' in r)) throw new Error(`expected a signed envelope, got ${JSON.stringify(r)}`);
  const e: ResponseEnvelope = r.envelope;
  return { ok: e.ok, b: JSON.parse(e.b) as Record<string, unknown> };
}

describe('device counters shared by several instances', () => {
  it('refuses on one instance a counter another instance took, with REPLAYED, and runs nothing', async () => {
    const t = await twoInstances();
    const { request: invoice } = fakeRequest({ amountMsat: 100_000n });
    const pay = t.request(7, 'pay', { invoice });
    expect(answer(await t.first.bridge.handle(pay)).ok).toBe(true);
    // The same signed request replayed to the other instance, whose memory has not seen it.
    expect(t.second.registry.get(xOnlyOf(DEVICE))!.lastCounter).toBe(0);
    const replay = answer(await t.second.bridge.handle(pay));
    expect(replay).toMatchObject({
      ok: false,
      b: { code: 'REPLAYED', message: 'counter 7 is not above 7' },
    });
    expect(t.lightning.payCalls).toBe(1);
    expect(balanceOf(t.ledger.accountNow('meter')!)).toBe(1_000_000n - 100_000n - 1000n);
    // The refusing instance caught up: a lower counter is now refused without asking the store.
    expect(t.second.registry.get(xOnlyOf(DEVICE))!.lastCounter).toBe(7);
    t.counters.asked.length = 0;
    expect(answer(await t.second.bridge.handle(t.request(6, 'balance')))).toMatchObject({
      b: { code: 'REPLAYED' },
    });
    expect(t.counters.asked).toEqual([]);
    // A higher counter goes through on either instance.
    expect(answer(await t.second.bridge.handle(t.request(8, 'balance'))).ok).toBe(true);
    t.service.stop();
  });

  it('waits for the shared claim before the method acts', async () => {
    const t = await twoInstances();
    const { request: invoice } = fakeRequest({ amountMsat: 100_000n });
    t.counters.hold();
    const pending = t.first.bridge.handle(t.request(3, 'pay', { invoice }));
    // The other instance takes the counter while the first waits for the store.
    await new Promise((r) => setImmediate(r));
    expect(t.counters.asked).toEqual([3]);
    expect(t.lightning.payCalls).toBe(0);
    t.counters.stored.set(xOnlyOf(DEVICE), 3);
    t.counters.release();
    expect(answer(await pending)).toMatchObject({ ok: false, b: { code: 'REPLAYED' } });
    expect(t.lightning.payCalls).toBe(0);
    t.service.stop();
  });

  it('of the same counter sent to both instances at once, exactly one is accepted', async () => {
    const t = await twoInstances();
    t.counters.hold();
    const both = Promise.all([
      t.first.bridge.handle(t.request(5, 'invoice', { amountMsat: '1000' })),
      t.second.bridge.handle(t.request(5, 'invoice', { amountMsat: '1000' })),
    ]);
    await new Promise((r) => setImmediate(r));
    t.counters.release();
    const answers = (await both).map(answer);
    expect(answers.filter((a) => a.ok)).toHaveLength(1);
    expect(answers.filter((a) => !a.ok)).toMatchObject([{ b: { code: 'REPLAYED' } }]);
    t.service.stop();
  });

  it('refuses a kept answer’s retry whose counter the store refuses', async () => {
    const t = await twoInstances();
    const first = answer(await t.first.bridge.handle(t.request(1, 'invoice', { amountMsat: '1000' }, 'inv')));
    expect(first.ok).toBe(true);
    // A retry under the key with a fresh counter gets the kept answer on the other instance...
    const retry = answer(
      await t.second.bridge.handle(t.request(2, 'invoice', { amountMsat: '1000' }, 'inv')),
    );
    expect(retry).toEqual(first);
    // ...but the same retry replayed to the first instance is refused.
    expect(
      answer(await t.first.bridge.handle(t.request(2, 'invoice', { amountMsat: '1000' }, 'inv'))),
    ).toMatchObject({ ok: false, b: { code: 'REPLAYED' } });
    t.service.stop();
  });

  it('answers INTERNAL and runs nothing when the store cannot be reached', async () => {
    const t = await twoInstances();
    const { request: invoice } = fakeRequest({ amountMsat: 100_000n });
    t.counters.fail = true;
    const r = answer(await t.first.bridge.handle(t.request(4, 'pay', { invoice })));
    expect(r).toMatchObject({ ok: false, b: { code: 'INTERNAL' } });
    expect(t.lightning.payCalls).toBe(0);
    // Nothing was taken: the device's counter is free once the store is back.
    t.counters.fail = false;
    expect(answer(await t.first.bridge.handle(t.request(4, 'pay', { invoice }))).ok).toBe(true);
    t.service.stop();
  });

  it('knows a device registered on another instance, and refuses one revoked there', async () => {
    const t = await twoInstances();
    const late = '57'.repeat(32);
    await t.first.registry.register({ deviceId: xOnlyOf(late), accountId: 'meter', name: 'late' });
    expect(t.second.registry.get(xOnlyOf(late))).toBeUndefined();
    const signed = (c: number) =>
      JSON.parse(JSON.stringify(signRequest({ c, t: T0, m: 'balance', p: '' }, late))) as unknown;
    expect(answer(await t.second.bridge.handle(signed(1))).ok).toBe(true);
    // Revoked through the first instance: the second, which still holds it as active, refuses it.
    await t.first.registry.revoke(xOnlyOf(late));
    expect(t.second.registry.get(xOnlyOf(late))!.state).toBe('active');
    expect(answer(await t.second.bridge.handle(signed(2)))).toMatchObject({
      ok: false,
      b: { code: 'DEVICE_REVOKED' },
    });
    expect(t.second.registry.get(xOnlyOf(late))!.state).toBe('revoked');
    // Registered through the first instance: the second neither registers it again nor fails to revoke it.
    const third = xOnlyOf('58'.repeat(32));
    await t.first.registry.register({ deviceId: third, accountId: 'meter', name: 'third' });
    await expect(
      t.second.registry.register({ deviceId: third, accountId: 'meter', name: 'again' }),
    ).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    expect((await t.second.registry.page({ limit: 10 })).map((d) => d.name).sort()).toEqual([
      'late',
      'meter-1',
      'third',
    ]);
    expect(await t.second.registry.revoke(third)).toMatchObject({ state: 'revoked' });
    expect(t.counters.revoked.has(third)).toBe(true);
    t.service.stop();
  });

  it('numbers a device’s events across instances: each number once, increasing', async () => {
    const t = await twoInstances();
    const id = xOnlyOf(DEVICE);
    const pushed = [];
    pushed.push(await t.first.events.push(id, 'ping', { i: 1 }));
    pushed.push(await t.second.events.push(id, 'ping', { i: 2 }));
    pushed.push(
      ...(await Promise.all([
        t.first.events.push(id, 'ping', { i: 3 }),
        t.second.events.push(id, 'ping', { i: 4 }),
      ])),
    );
    pushed.push(await t.first.events.push(id, 'ping', { i: 5 }));
    expect(pushed.map((e) => e.n).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(pushed[4]!.n).toBe(5);
    t.service.stop();
  });

  it('replays, after reading the outbox again, the events another instance pushed, each once in order', async () => {
    const t = await twoInstances();
    const id = xOnlyOf(DEVICE);
    const one = await t.first.events.push(id, 'ping', { i: 1 }, 600);
    const two = await t.second.events.push(id, 'ping', { i: 2 }, 600);
    const sent: number[] = [];
    t.first.events.addSink({ pushEvent: async (e) => void sent.push(e.n) });
    expect(await t.first.events.replay(id)).toBe(1); // its memory holds its own push only
    sent.length = 0;
    await t.first.events.load();
    await t.first.events.load();
    expect(await t.first.events.replay(id)).toBe(2);
    expect(sent).toEqual([one.n, two.n]);
    t.service.stop();
  });
});
