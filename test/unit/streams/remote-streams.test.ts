import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { Payment } from '../../../src/payments/types.js';
import type { PaymentOutcome, TlvRecord } from '../../../src/lightning/types.js';
import { readStreamTag } from '../../../src/streams/records.js';
import { FakeLightning, REMOTE_NODE } from '../../support/fake-lightning.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import type { FixtureOptions, StreamsFixture } from './support.js';
import { closingFixtures, ManualClock, OPEN, streamsFixture } from './support.js';

const open = closingFixtures();
async function fixture(o: FixtureOptions = {}, fund = 1_000_000n, policy = OPEN): Promise<StreamsFixture> {
  const f = await open(o);
  await f.account('payer', fund, policy);
  return f;
}

const FEE = 1000n; // what FakeLightning charges per payment
const payments = async (f: StreamsFixture): Promise<Payment[]> =>
  (await f.service.listPayments('payer')).reverse();
const amounts = async (f: StreamsFixture): Promise<bigint[]> => (await payments(f)).map((p) => p.amountMsat);
const records = (p: Payment): TlvRecord[] =>
  (p.records ?? []).map((r) => ({ type: BigInt(r.type), value: r.value }));
const blip = (p: Payment): Record<string, unknown> =>
  JSON.parse(
    Buffer.from(p.records!.find((r) => r.type === '7629169')!.value, 'hex').toString('utf8'),
  ) as Record<string, unknown>;
const failed = (hash: string): PaymentOutcome => ({
  status: 'failed',
  paymentHash: hash,
  reason: 'NO_ROUTE',
  message: 'no route',
});

describe('remote streams', () => {
  it('keysends what accrued every second, with bLIP-10 and Coulomb records', async () => {
    const f = await fixture();
    const recipientId = randomUUID();
    const s = await f.streams.create('payer', {
      payee: { nodePubkey: REMOTE_NODE, recipientId },
      rateMsat: msat(1000),
    });
    expect(s).toMatchObject({ mode: 'remote', intervalSeconds: 1, minPaymentMsat: 1000n, payments: 0 });
    await f.clock.advance(3000);
    const sent = await payments(f);
    expect(sent.map((p) => [p.kind, p.destination, p.amountMsat, p.status])).toEqual([
      ['keysend', REMOTE_NODE, 1000n, 'succeeded'],
      ['keysend', REMOTE_NODE, 1000n, 'succeeded'],
      ['keysend', REMOTE_NODE, 1000n, 'succeeded'],
    ]);
    expect(sent.map(blip)).toEqual(
      [1, 2, 3].map((n) => ({
        action: 'stream',
        app_name: 'coulomb',
        value_msat: 1000,
        value_msat_total: 1000 * n,
        ts: n,
        uuid: s.id,
        seq: n,
        recipient: recipientId,
      })),
    );
    expect(sent.map((p) => readStreamTag(records(p)))).toEqual(
      [1, 2, 3].map((seq) => ({ source: 'coulomb', streamId: s.id, seq, recipientId })),
    );
    expect(await f.streams.get(s.id)).toMatchObject({ paidMsat: 3000n, payments: 3, owedMsat: 0n });
    expect(balanceOf(await f.ledger.requireAccount('payer'))).toBe(1_000_000n - 3n * (1000n + FEE));
  });

  it('carries amounts under the minimum to the next interval', async () => {
    const f = await fixture();
    await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(300) });
    await f.clock.advance(9000);
    expect(await amounts(f)).toEqual([1200n, 1200n]); // at 4 s and 8 s
  });

  it('sends every intervalSeconds', async () => {
    const f = await fixture();
    await f.streams.create('payer', {
      payee: { nodePubkey: REMOTE_NODE },
      rateMsat: msat(10),
      intervalSeconds: 5,
      minPaymentMsat: msat(1),
    });
    await f.clock.advance(12_000);
    expect(await amounts(f)).toEqual([50n, 50n]);
  });

  it('never overlaps sends of one stream: what accrues meanwhile goes in the next one', async () => {
    const lightning = new FakeLightning();
    const f = await fixture({ lightning });
    let release: (() => void) | undefined;
    const normal = lightning.behaviour;
    lightning.behaviour = (hash, amount, fee) =>
      new Promise<PaymentOutcome>((resolve) => {
        release = () => resolve(normal(hash, amount, fee) as PaymentOutcome);
      });
    await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(5000);
    expect(lightning.payCalls).toBe(1);
    lightning.behaviour = normal;
    release!();
    await f.clock.advance(1000);
    expect(await amounts(f)).toEqual([1000n, 5000n]);
  });

  it('counts a pending payment as paid and owes it again when it fails later', async () => {
    const lightning = new FakeLightning();
    const f = await fixture({ lightning });
    const normal = lightning.behaviour;
    let first = true;
    lightning.behaviour = (hash, amount, fee) => {
      if (!first) return normal(hash, amount, fee);
      first = false;
      return { status: 'pending', paymentHash: hash };
    };
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(2000);
    expect((await payments(f)).map((p) => p.status)).toEqual(['pending', 'succeeded']);
    expect((await f.streams.get(s.id)).paidMsat).toBe(2000n);
    lightning.resolve(failed((await payments(f))[0]!.paymentHash));
    await f.service.reconcile({ full: false });
    await f.clock.advance(1000);
    expect(await amounts(f)).toEqual([1000n, 1000n, 2000n]);
    expect(await f.streams.get(s.id)).toMatchObject({ paidMsat: 3000n, owedMsat: 0n });
  });

  it('stops with payment_failed after failures in a row; each retry carries everything owed', async () => {
    const lightning = new FakeLightning();
    lightning.behaviour = (hash) => failed(hash);
    const f = await fixture({ lightning, options: { maxConsecutiveFailures: 3 } });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(5000);
    expect(await amounts(f)).toEqual([1000n, 2000n, 3000n]);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'payment_failed',
      stopCode: 'NO_ROUTE',
      paidMsat: 0n,
    });
    expect(balanceOf(await f.ledger.requireAccount('payer'))).toBe(1_000_000n);
  });

  it('stops on a policy denial, keeping its code; nothing was sent', async () => {
    const f = await fixture({}, 1_000_000n, { rules: [{ type: 'payee_denylist', pubkeys: [REMOTE_NODE] }] });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(3000);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'policy_denied',
      stopCode: 'PAYEE_RESTRICTED',
      payments: 0,
    });
    expect(f.lightning.payCalls).toBe(0);
  });

  it('waits out a retryable denial (rate limit) and then pays everything owed', async () => {
    const f = await fixture({}, 10_000_000n, { rules: [{ type: 'max_per_minute', max: 2 }] });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(62_000);
    expect(await amounts(f)).toEqual([1000n, 1000n, 60_000n]);
    expect(await f.streams.get(s.id)).toMatchObject({ state: 'active', payments: 3, paidMsat: 62_000n });
    expect((await payments(f)).map((p) => blip(p)['seq'])).toEqual([1, 2, 3]); // refused attempts use no number
  });

  it('stops with funds_exhausted when the payer cannot cover amount + fee limit', async () => {
    const f = await fixture({}, 15_000n);
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(4000);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'funds_exhausted',
      stopCode: 'INSUFFICIENT_FUNDS',
      paidMsat: 3000n, // the fourth could not reserve 1000 + the 10 sat fee limit
    });
  });

  it('stops after a payment that needs approval: one waits, no more are queued', async () => {
    const f = await fixture({}, 1_000_000n, {
      rules: [{ type: 'approval_above', thresholdMsat: msat(100) }],
    });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(3000);
    expect((await payments(f)).map((p) => p.status)).toEqual(['awaiting_approval']);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'policy_denied',
      stopCode: 'NEEDS_APPROVAL',
    });
  });

  it('stop pays what is owed below the minimum in one last payment', async () => {
    const f = await fixture();
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(300) });
    await f.clock.advance(3500);
    expect(await amounts(f)).toEqual([]);
    expect(await f.streams.stop(s.id)).toMatchObject({ state: 'stopped', owedMsat: 900n });
    await f.clock.advance(3000);
    expect(await amounts(f)).toEqual([900n]);
    expect(await f.streams.get(s.id)).toMatchObject({ paidMsat: 900n, owedMsat: 0n });
  });

  it('reaching maxTotalMsat stops the stream and the last payment completes the total exactly', async () => {
    const f = await fixture();
    const s = await f.streams.create('payer', {
      payee: { nodePubkey: REMOTE_NODE },
      rateMsat: msat(1000),
      maxTotalMsat: msat(2500),
    });
    await f.clock.advance(6000);
    expect(await amounts(f)).toEqual([1000n, 1000n, 500n]);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'cap_reached',
      paidMsat: 2500n,
    });
  });

  it('pausing stops accrual; what is already owed above the minimum is still paid', async () => {
    const f = await fixture();
    const s = await f.streams.create('payer', {
      payee: { nodePubkey: REMOTE_NODE },
      rateMsat: msat(1000),
      intervalSeconds: 3,
    });
    await f.clock.advance(4500);
    await f.streams.pause(s.id);
    await f.clock.advance(10_000);
    expect(await amounts(f)).toEqual([3000n, 1000n]);
    await f.streams.resume(s.id);
    await f.clock.advance(3500);
    expect(await amounts(f)).toEqual([3000n, 1000n, 1000n, 3000n]);
    expect(await f.streams.get(s.id)).toMatchObject({ state: 'active', activeSeconds: 8, paidMsat: 8000n });
  });

  it('metered remote streams pay reported usage', async () => {
    const f = await fixture();
    const s = await f.streams.create('payer', {
      payee: { nodePubkey: REMOTE_NODE },
      priceMsatPerUnit: msat(400),
    });
    await f.streams.reportUsage(s.id, 2);
    await f.clock.advance(1000);
    await f.streams.reportUsage(s.id, 3);
    await f.clock.advance(1000);
    expect(await amounts(f)).toEqual([2000n]); // 800 was under the minimum at the first interval
  });

  it('an unknown outcome is retried under the same idempotency key: sent once, counted once', async () => {
    let calls = 0;
    const f = await fixture({
      payments: (real) => ({
        authorizeSpend: (a, r) => real.authorizeSpend(a, r),
        prepare: (ids, others) => real.prepare(ids, others),
        spendReady: (payer, others) => real.spendReady(payer, others),
        getPayment: (id) => real.getPayment(id),
        get nodeId() {
          return real.nodeId;
        },
        keysend: async (a, input) => {
          const p = await real.keysend(a, input);
          if (calls++ === 0) throw new Error('connection reset'); // sent, but we never heard back
          return p;
        },
      }),
    });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(3000);
    expect(f.lightning.payCalls).toBe(2);
    expect(await amounts(f)).toEqual([1000n, 2000n]);
    expect(await f.streams.get(s.id)).toMatchObject({ paidMsat: 3000n, payments: 2 });
    expect(f.log.warnings.some((w) => w.msg?.includes('outcome unknown'))).toBe(true);
  });

  it('after a crash mid-send, the restart replays the intent instead of paying twice', async () => {
    const store = new MemoryLedgerStore();
    const lightning = new FakeLightning();
    const clock = new ManualClock();
    lightning.behaviour = () => new Promise<PaymentOutcome>(() => undefined); // LND never answers
    const f = await streamsFixture({ store, lightning, clock });
    await f.account('payer', 1_000_000n);
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await clock.advance(1000);
    expect(lightning.payCalls).toBe(1);
    f.service.stop(); // the process dies with the keysend in flight
    clock.clearAll();
    lightning.behaviour = new FakeLightning().behaviour;
    clock.jump(60_000);
    const g = await open({ store, lightning, clock });
    await clock.advance(1000);
    expect(lightning.payCalls).toBe(1); // the replay found the payment; nothing new went out
    const p = await g.service.listPayments('payer');
    expect(p.map((x) => x.status)).toEqual(['pending']);
    expect(await g.streams.get(s.id)).toMatchObject({ paidMsat: 1000n, payments: 1 });
    lightning.resolve({
      status: 'succeeded',
      paymentHash: p[0]!.paymentHash,
      preimage: '00'.repeat(32),
      amountMsat: msat(1000),
      feeMsat: msat(10),
    });
    await g.service.reconcile({ full: false });
    await clock.advance(2000);
    expect(await amounts(g)).toEqual([1000n, 2000n, 1000n]); // the minute down is not billed
    expect(await g.streams.get(s.id)).toMatchObject({ activeSeconds: 4, paidMsat: 4000n, owedMsat: 0n });
  });

  it('a stop during a send still gets its last payment once that send completes', async () => {
    const lightning = new FakeLightning();
    const f = await fixture({ lightning });
    let release: (() => void) | undefined;
    const normal = lightning.behaviour;
    lightning.behaviour = (hash, amount, fee) =>
      new Promise<PaymentOutcome>((resolve) => {
        release = () => resolve(normal(hash, amount, fee) as PaymentOutcome);
      });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(3500);
    await f.streams.stop(s.id);
    lightning.behaviour = normal;
    release!();
    await f.clock.advance(2000);
    expect(await amounts(f)).toEqual([1000n, 2000n]);
    expect(await f.streams.get(s.id)).toMatchObject({ state: 'stopped', paidMsat: 3000n, owedMsat: 0n });
  });

  it('a stopped stream gives up on a payment it cannot confirm, after the failure limit', async () => {
    const f = await fixture({
      options: { maxConsecutiveFailures: 2 },
      payments: (real) => ({
        authorizeSpend: (a, r) => real.authorizeSpend(a, r),
        prepare: (ids, others) => real.prepare(ids, others),
        spendReady: (payer, others) => real.spendReady(payer, others),
        getPayment: (id) => real.getPayment(id),
        get nodeId() {
          return real.nodeId;
        },
        keysend: () => Promise.reject(new Error('socket hang up')),
      }),
    });
    const s = await f.streams.create('payer', { payee: { nodePubkey: REMOTE_NODE }, rateMsat: msat(1000) });
    await f.clock.advance(10_000);
    expect(await f.streams.get(s.id)).toMatchObject({
      state: 'stopped',
      stopReason: 'payment_failed',
      stopCode: 'INTERNAL',
      paidMsat: 0n,
    });
    expect(f.log.errors.some((e) => e.msg?.includes('gave up'))).toBe(true);
    const record = JSON.parse(f.store.records.get(`stream!${s.id}`)!) as { d: { remote: object } };
    expect(record.d.remote).not.toHaveProperty('intent');
  });
});
