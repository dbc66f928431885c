import { describe, expect, it } from 'vitest';
import { DeviceBridge } from '../../../src/devices/bridge.js';
import {
  enrollDigest,
  responseDigest,
  schnorrSign,
  schnorrVerify,
  signRequest,
  xOnlyOf,
  type ResponseEnvelope,
} from '../../../src/devices/envelope.js';
import { accountOperations } from '../../../src/devices/operations.js';
import { DeviceRegistry } from '../../../src/devices/registry.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

const GATEWAY = '44'.repeat(32);
const DEVICE = '55'.repeat(32);
const T0 = 1_763_700_000;

async function bridgeFixture() {
  let now = T0 * 1000;
  const f = await paymentsFixture({ now: () => now });
  await f.account('meter', 1_000_000n);
  const registry = new DeviceRegistry(f.ledger, () => now);
  await registry.load();
  await registry.register({ deviceId: xOnlyOf(DEVICE), accountId: 'meter', name: 'meter-1' });
  const bridge = new DeviceBridge(
    registry,
    f.ledger,
    GATEWAY,
    accountOperations({ ledger: f.ledger, payments: f.service }),
    silentLog,
    {
      now: () => now,
    },
  );
  let counter = 0;
  const send = (
    m: string,
    p: object | string,
    extra: { c?: number; t?: number; k?: string; key?: string } = {},
  ) =>
    bridge.handle(
      JSON.parse(
        JSON.stringify(
          signRequest(
            {
              c: extra.c ?? ++counter,
              t: extra.t ?? Math.floor(now / 1000),
              m,
              p: typeof p === 'string' ? p : JSON.stringify(p),
              ...(extra.k ? { k: extra.k } : {}),
            },
            extra.key ?? DEVICE,
          ),
        ),
      ),
    );
  return { ...f, registry, bridge, send, advance: (ms: number) => (now += ms) };
}

function verified(r: Awaited<ReturnType<DeviceBridge['handle']>>): ResponseEnvelope {
  if (!('envelope' in r)) throw new Error(`expected a signed envelope, got ${JSON.stringify(r)}`);
  const { s, ...unsigned } = r.envelope;
  expect(r.envelope.g).toBe(xOnlyOf(GATEWAY));
  expect(schnorrVerify(responseDigest(unsigned), xOnlyOf(GATEWAY), s)).toBe(true);
  return r.envelope;
}

describe('device bridge', () => {
  it('answers a signed balance request with a response signed by the gateway key', async () => {
    const b = await bridgeFixture();
    const r = verified(await b.send('balance', ''));
    expect(r).toMatchObject({ ok: true, c: 1, d: xOnlyOf(DEVICE) });
    expect(JSON.parse(r.b)).toEqual({ balanceMsat: '1000000', availableMsat: '1000000' });
  });

  it('pays an invoice from the device account, once per idempotency key', async () => {
    const b = await bridgeFixture();
    const { request } = fakeRequest({ amountMsat: 100_000n });
    const first = verified(await b.send('pay', { invoice: request }, { k: 'pay-1' }));
    expect(first.ok).toBe(true);
    const paid = JSON.parse(first.b) as { status: string; paymentId: string };
    expect(paid.status).toBe('succeeded');
    const again = verified(await b.send('pay', { invoice: request }, { k: 'pay-1' }));
    expect(JSON.parse(again.b)).toEqual(paid);
    expect(again.c).toBe(2); // answers the retry's own counter
    expect(b.lightning.payCalls).toBe(1);
  });

  it('rejects forged, tampered, replayed, stale and unknown requests, changing nothing', async () => {
    const b = await bridgeFixture();
    const balance = () => balanceOf(b.ledger.accountNow('meter')!);
    const { request } = fakeRequest({ amountMsat: 100_000n });
    // Forged: the right device id, signed by another key.
    const good = signRequest({ c: 10, t: T0, m: 'pay', p: JSON.stringify({ invoice: request }) }, DEVICE);
    const forged = { ...good, s: schnorrSign(Buffer.alloc(32, 1), '66'.repeat(32)) };
    expect(await b.bridge.handle(forged)).toMatchObject({ status: 401, error: { code: 'BAD_SIGNATURE' } });
    // Tampered: params changed after signing.
    expect(await b.bridge.handle({ ...good, p: '{"invoice":"lnbcrt1other"}' })).toMatchObject({
      status: 401,
      error: { code: 'BAD_SIGNATURE' },
    });
    // Unknown device, malformed envelope, unsupported version.
    expect(await b.send('balance', '', { key: '77'.repeat(32) })).toMatchObject({
      error: { code: 'UNKNOWN_DEVICE' },
    });
    expect(await b.bridge.handle({ ...good, c: 'x' })).toMatchObject({
      status: 400,
      error: { code: 'BAD_ENVELOPE' },
    });
    expect(await b.bridge.handle({ ...good, v: 9 })).toMatchObject({
      error: { code: 'UNSUPPORTED_VERSION' },
    });
    expect(b.lightning.payCalls).toBe(0);
    // The genuine one goes through; sent again it is a replay.
    expect(verified(await b.bridge.handle(good)).ok).toBe(true);
    const replay = verified(await b.bridge.handle(good));
    expect(replay.ok).toBe(false);
    expect(JSON.parse(replay.b)).toMatchObject({ code: 'REPLAYED' });
    expect(JSON.parse(verified(await b.send('balance', '', { c: 5 })).b)).toMatchObject({ code: 'REPLAYED' });
    // Stale clock.
    const stale = verified(await b.send('balance', '', { c: 11, t: T0 - 301 }));
    expect(JSON.parse(stale.b)).toMatchObject({ code: 'CLOCK_SKEW' });
    expect(b.lightning.payCalls).toBe(1);
    expect(balance()).toBe(1_000_000n - 100_000n - 1000n);
    // Unknown method and bad params are signed errors too.
    expect(JSON.parse(verified(await b.send('teleport', '', { c: 20 })).b)).toMatchObject({
      code: 'UNKNOWN_METHOD',
    });
    expect(JSON.parse(verified(await b.send('pay', '[1]', { c: 21 })).b)).toMatchObject({
      code: 'INVALID_PARAMS',
    });
    expect(JSON.parse(verified(await b.send('invoice', { amountMsat: '-5' }, { c: 22 })).b)).toMatchObject({
      code: 'INVALID_PARAMS',
    });
    // A revoked device is refused before anything else.
    await b.registry.revoke(xOnlyOf(DEVICE));
    expect(await b.send('balance', '', { c: 30 })).toMatchObject({
      status: 401,
      error: { code: 'DEVICE_REVOKED' },
    });
  });

  it('takes no counter and keeps no answer for a request refused for its method or params', async () => {
    const b = await bridgeFixture();
    const answer = async (m: string, p: object | string, extra: { c: number; k?: string }) => {
      const r = verified(await b.send(m, p, extra));
      return { ok: r.ok, c: r.c, b: JSON.parse(r.b) as Record<string, unknown> };
    };
    const lastCounter = () => b.registry.get(xOnlyOf(DEVICE))!.lastCounter;
    expect(await answer('teleport', '', { c: 10 })).toMatchObject({
      ok: false,
      c: 10,
      b: { code: 'UNKNOWN_METHOD' },
    });
    expect(lastCounter()).toBe(0);
    expect(await answer('balance', '', { c: 10 })).toMatchObject({ ok: true, c: 10 });
    expect(lastCounter()).toBe(10);
    // Params that are not an object, and params the method refuses by their shape alone.
    expect(await answer('pay', '[1]', { c: 11 })).toMatchObject({ ok: false, b: { code: 'INVALID_PARAMS' } });
    expect(await answer('invoice', { amountMsat: '-5' }, { c: 11 })).toMatchObject({
      ok: false,
      b: { code: 'INVALID_PARAMS' },
    });
    expect(await answer('pay', { invoice: '' }, { c: 11 })).toMatchObject({
      ok: false,
      b: { code: 'INVALID_PARAMS' },
    });
    expect(lastCounter()).toBe(10);
    // Nothing is kept under the idempotency key of a refused request: the key still runs its method.
    expect(await answer('invoice', { amountMsat: 'x' }, { c: 11, k: 'inv-1' })).toMatchObject({
      ok: false,
      b: { code: 'INVALID_PARAMS' },
    });
    const made = await answer('invoice', { amountMsat: '5000' }, { c: 11, k: 'inv-1' });
    expect(made).toMatchObject({ ok: true, c: 11, b: { amountMsat: '5000' } });
    expect(lastCounter()).toBe(11);
    // A name every object has by inheritance is not a method.
    expect(await answer('constructor', '', { c: 12 })).toMatchObject({
      ok: false,
      b: { code: 'UNKNOWN_METHOD' },
    });
    expect(lastCounter()).toBe(11);
    // Once taken, the counter is gone: the same counter again is a replay.
    expect(await answer('balance', '', { c: 11 })).toMatchObject({ ok: false, b: { code: 'REPLAYED' } });
  });

  it('runs a method once per idempotency key when a retry arrives while the first is still running', async () => {
    const b = await bridgeFixture();
    const [first, retry] = await Promise.all([
      b.send('invoice', { amountMsat: '5000' }, { c: 1, k: 'inv-1' }),
      b.send('invoice', { amountMsat: '5000' }, { c: 2, k: 'inv-1' }),
    ]);
    const one = verified(first);
    const two = verified(retry);
    expect([one.ok, one.c, two.ok, two.c]).toEqual([true, 1, true, 2]);
    expect(two.b).toBe(one.b);
    expect(b.lightning.invoices.size).toBe(1);
    // A refusal by the method is not kept: a retry in flight waits for it, then runs the method itself.
    const [denied, deniedAgain] = await Promise.all([
      b.send('pay', { invoice: 'lnbcrt-not-an-invoice' }, { c: 3, k: 'pay-x' }),
      b.send('pay', { invoice: 'lnbcrt-not-an-invoice' }, { c: 4, k: 'pay-x' }),
    ]);
    expect([verified(denied).ok, verified(deniedAgain).ok]).toEqual([false, false]);
    expect(verified(deniedAgain).c).toBe(4);
    // Another request under a key whose first request is still running waits, then is refused.
    const [one2, other2] = await Promise.all([
      b.send('invoice', { amountMsat: '5000' }, { c: 5, k: 'inv-2' }),
      b.send('invoice', { amountMsat: '6000' }, { c: 6, k: 'inv-2' }),
    ]);
    expect(verified(one2).ok).toBe(true);
    expect(JSON.parse(verified(other2).b)).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    expect(b.registry.get(xOnlyOf(DEVICE))!.lastCounter).toBe(5);
    expect(b.lightning.invoices.size).toBe(2);
  });

  it('refuses an idempotency key reused for another request with IDEMPOTENCY_CONFLICT, changing nothing', async () => {
    const b = await bridgeFixture();
    const balance = () => balanceOf(b.ledger.accountNow('meter')!);
    const lastCounter = () => b.registry.get(xOnlyOf(DEVICE))!.lastCounter;
    const a = fakeRequest({ amountMsat: 100_000n });
    const other = fakeRequest({ amountMsat: 200_000n });
    const first = verified(await b.send('pay', { invoice: a.request }, { c: 1, k: 'k' }));
    expect(first.ok).toBe(true);
    const after = balance();
    // Invoice B under invoice A's key, with a new counter: refused, nothing paid, counter not taken.
    const conflict = verified(await b.send('pay', { invoice: other.request }, { c: 2, k: 'k' }));
    expect(conflict).toMatchObject({ ok: false, c: 2 });
    expect(JSON.parse(conflict.b)).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    expect(b.lightning.payCalls).toBe(1);
    expect(balance()).toBe(after);
    expect(lastCounter()).toBe(1);
    // Another method under the same key is another request too.
    const invoice = verified(await b.send('invoice', { amountMsat: '5000' }, { c: 2, k: 'k' }));
    expect(JSON.parse(invoice.b)).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    expect(b.lightning.invoices.size).toBe(0);
    expect(lastCounter()).toBe(1);
    // The same request (its params in another key order) still gets the kept answer, on counter 2.
    const retry = verified(
      await b.send('pay', `{ "invoice": ${JSON.stringify(a.request)} }`, { c: 2, k: 'k' }),
    );
    expect(retry).toMatchObject({ ok: true, c: 2, b: first.b });
    expect(lastCounter()).toBe(2);
    expect(b.lightning.payCalls).toBe(1);
  });

  it('keeps no refusal of the method under its key: a retry after a top-up runs it again', async () => {
    const b = await bridgeFixture();
    const { request } = fakeRequest({ amountMsat: 2_000_000n });
    const denied = verified(await b.send('pay', { invoice: request }, { k: 'big' }));
    expect(denied.ok).toBe(false);
    expect(JSON.parse(denied.b)).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    await b.account('meter', 5_000_000n);
    const paid = verified(await b.send('pay', { invoice: request }, { k: 'big' }));
    expect(paid.ok).toBe(true);
    expect(JSON.parse(paid.b)).toMatchObject({ status: 'succeeded' });
    expect(b.lightning.payCalls).toBe(1);
    // Now kept: a retry gets it, and the key no longer accepts another request.
    expect(verified(await b.send('pay', { invoice: request }, { k: 'big' })).b).toBe(paid.b);
    expect(b.lightning.payCalls).toBe(1);
  });

  it('replays an answer kept before fingerprints, and ignores a refusal kept then', async () => {
    const b = await bridgeFixture();
    const id = xOnlyOf(DEVICE);
    const legacy = { ok: true, b: '{"paymentId":"old","status":"succeeded"}' };
    await b.ledger.putRecords([
      { key: `didem!${id}!old-pay`, value: JSON.stringify(legacy) },
      {
        key: `didem!${id}!old-refusal`,
        value: JSON.stringify({ ok: false, b: '{"code":"QUOTA_EXCEEDED"}' }),
      },
    ]);
    const { request } = fakeRequest({ amountMsat: 100_000n });
    const replayed = verified(await b.send('pay', { invoice: request }, { k: 'old-pay' }));
    expect(replayed).toMatchObject({ ok: true, b: legacy.b });
    expect(b.lightning.payCalls).toBe(0);
    const made = verified(await b.send('invoice', { amountMsat: '5000' }, { k: 'old-refusal' }));
    expect(made.ok).toBe(true);
    expect(JSON.parse(made.b)).toMatchObject({ amountMsat: '5000' });
  });

  it('keeps an answer for 32 days under the ledger’s idempotency rule, after which the key is free', async () => {
    const b = await bridgeFixture();
    const id = xOnlyOf(DEVICE);
    const made = verified(await b.send('invoice', { amountMsat: '5000' }, { k: 'inv' }));
    expect(made.ok).toBe(true);
    // One rule: the answer is the ledger's idempotency record of the device's key, nothing else.
    expect(
      await b.ledger.getRecord(`idem!meter!${encodeURIComponent(`device-request:${id}:inv`)}`),
    ).toBeDefined();
    expect(await b.ledger.getRecord(`didem!${id}!inv`)).toBeUndefined();
    await b.ledger.putRecords([
      { key: `didem!${id}!legacy`, value: JSON.stringify({ ok: true, b: '{}' }) },
      { key: `didem!${id}!refused`, value: JSON.stringify({ ok: false, b: '{"code":"QUOTA_EXCEEDED"}' }) },
      {
        key: `didem!${id}!dated`,
        value: JSON.stringify({ ok: true, b: '{}', f: 'x', at: T0 * 1000 }),
      },
    ]);
    b.advance(31 * 86_400_000);
    expect(await b.bridge.pruneKeptAnswers()).toBe(1); // the refusal kept before the rule
    expect(verified(await b.send('invoice', { amountMsat: '5000' }, { k: 'inv' })).b).toBe(made.b);
    b.advance(2 * 86_400_000);
    expect(await b.bridge.pruneKeptAnswers(1)).toBe(1); // the dated answer kept before the rule
    expect(await b.ledger.getRecord(`didem!${id}!dated`)).toBeUndefined();
    expect(await b.ledger.getRecord(`didem!${id}!legacy`)).toBeDefined(); // no time: kept
    const again = verified(await b.send('invoice', { amountMsat: '7000' }, { k: 'inv' }));
    expect(again.ok).toBe(true);
    expect(JSON.parse(again.b)).toMatchObject({ amountMsat: '7000' });
  });

  it('enrolls a device-generated key once with a one-time code', async () => {
    const b = await bridgeFixture();
    const { code } = await b.registry.createEnrollment('meter', 'sensor-2', 600);
    const key = '88'.repeat(32);
    const id = xOnlyOf(key);
    await expect(
      b.registry.enroll({ deviceId: id, code, signature: schnorrSign(enrollDigest(id, 'WRONG-CODE'), key) }),
    ).rejects.toMatchObject({ code: 'BAD_SIGNATURE' });
    const d = await b.registry.enroll({
      deviceId: id,
      code,
      signature: schnorrSign(enrollDigest(id, code), key),
    });
    expect(d).toMatchObject({ accountId: 'meter', name: 'sensor-2', state: 'active' });
    await expect(
      b.registry.enroll({ deviceId: xOnlyOf('99'.repeat(32)), code, signature: '00'.repeat(64) }),
    ).rejects.toMatchObject({ code: 'ENROLLMENT_INVALID' });
    const late = await b.registry.createEnrollment('meter', 'sensor-3', 60);
    b.advance(61_000);
    const k3 = 'aa'.repeat(32);
    await expect(
      b.registry.enroll({
        deviceId: xOnlyOf(k3),
        code: late.code,
        signature: schnorrSign(enrollDigest(xOnlyOf(k3), late.code), k3),
      }),
    ).rejects.toMatchObject({ code: 'ENROLLMENT_INVALID' });
  });
});
