import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import type { PaymentOutcome } from '../../../src/lightning/types.js';
import type { Payment } from '../../../src/payments/types.js';
import { fakeRequest, FakeLightning } from '../../support/fake-lightning.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const FEE = msat(1_000);
const OP = 'operator-key-for-tests-0123456789abcdef';
const op = { authorization: `Bearer ${OP}` };

/** A fake LND that records which payment hashes it was asked to track, and can hold the answers. */
class TrackedLightning extends FakeLightning {
  readonly tracked = new Set<string>();
  gate: Promise<void> | undefined;

  override async trackPayment(hash: string): Promise<PaymentOutcome> {
    this.tracked.add(hash);
    if (this.gate) await this.gate;
    return super.trackPayment(hash);
  }
}

/** A clock that moves on at every reading: each payment has its own creation time. */
const ticking = (): { now: () => number } => {
  let t = Date.UTC(2026, 0, 1);
  return { now: () => (t += 1) };
};

const pay = (f: Awaited<ReturnType<typeof paymentsFixture>>, account: string, amountMsat = 1_000n) =>
  f.service.pay(account, { request: fakeRequest({ amountMsat }).request, maxFeeMsat: FEE });

// Generous timeouts: these tests make hundreds of payments on a shared machine (no assertion on time).
describe('payments history on disk', () => {
  it('reopens with 1,000 final payments without loading them, and re-tracks only the live one', async () => {
    const store = new MemoryLedgerStore();
    const lightning = new TrackedLightning();
    const clock = ticking();
    const f = await paymentsFixture(clock, store, lightning);
    await f.account('a', 100_000_000n);
    for (let i = 0; i < 1000; i++) await pay(f, 'a');
    lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    const live = await pay(f, 'a');
    expect(live.status).toBe('pending');
    f.service.stop();

    lightning.tracked.clear();
    const again = await paymentsFixture(clock, store, lightning);
    expect(again.service.residentPayments).toBe(1);
    expect([...lightning.tracked]).toEqual([live.paymentHash]);
    // The history is still there, read from disk when asked.
    const page = await again.service.pagePayments('a', { limit: 500 });
    expect(page.payments).toHaveLength(500);
    expect(page.payments[0]!.id).toBe(live.id);
    expect(again.service.residentPayments).toBe(1); // listing does not fill the memory
    const old = page.payments[499]!;
    expect(await again.service.findPayment(old.id)).toMatchObject({ id: old.id, status: 'succeeded' });
    again.service.stop();
  }, 120_000);

  it('pages an account’s payments newest first, each exactly once, while new ones arrive', async () => {
    const f = await paymentsFixture(ticking());
    await f.account('a', 100_000_000n);
    await f.account('b', 100_000_000n);
    const made: string[] = [];
    for (let i = 0; i < 25; i++) {
      made.push((await pay(f, 'a')).id);
      await pay(f, 'b'); // another account's payments are not listed
    }
    const seen: Payment[] = [];
    let cursor: string | undefined;
    do {
      const page = await f.service.pagePayments('a', { limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.payments);
      cursor = page.nextCursor;
      await pay(f, 'a'); // a payment made between pages comes before the cursor, not after it
    } while (cursor);
    expect(seen.map((p) => p.id)).toEqual([...made].reverse());
    for (let i = 1; i < seen.length; i++)
      expect(seen[i - 1]!.createdAt).toBeGreaterThanOrEqual(seen[i]!.createdAt);
    f.service.stop();
  }, 120_000);

  it('pages GET /v1/accounts/:id/payments with an opaque cursor and refuses a malformed one', async () => {
    const f = await paymentsFixture(ticking());
    const app = await accountsApp(f, OP);
    await f.account('a', 100_000_000n);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await pay(f, 'a')).id);
    const first = await app.inject({ url: '/v1/accounts/a/payments?limit=3', headers: op });
    expect(first.statusCode).toBe(200);
    const body1 = first.json<{ payments: { id: string }[]; nextCursor?: string }>();
    expect(body1.payments.map((p) => p.id)).toEqual(ids.slice(2).reverse());
    expect(body1.nextCursor).toEqual(expect.any(String));
    const second = await app.inject({
      url: `/v1/accounts/a/payments?limit=3&cursor=${encodeURIComponent(body1.nextCursor!)}`,
      headers: op,
    });
    const body2 = second.json<{ payments: { id: string }[]; nextCursor?: string }>();
    expect(body2.payments.map((p) => p.id)).toEqual(ids.slice(0, 2).reverse());
    expect(body2).not.toHaveProperty('nextCursor');
    const all = await app.inject({ url: '/v1/accounts/a/payments', headers: op });
    expect(all.json<{ payments: unknown[] }>().payments).toHaveLength(5);
    const bad = await app.inject({ url: '/v1/accounts/a/payments?cursor=nope', headers: op });
    expect(bad.statusCode).toBe(400);
    const tooMany = await app.inject({ url: '/v1/accounts/a/payments?limit=501', headers: op });
    expect(tooMany.statusCode).toBe(400);
    f.service.stop();
    await app.close();
  }, 120_000);

  it('runs a full reconciliation as one background job with progress, 409 while it runs', async () => {
    const lightning = new TrackedLightning();
    const f = await paymentsFixture({}, new MemoryLedgerStore(), lightning);
    const app = await accountsApp(f, OP);
    await f.account('a', 100_000_000n);
    for (let i = 0; i < 250; i++) await pay(f, 'a'); // more than one page (200) of the job
    const idle = await app.inject({ url: '/v1/reconciliation', headers: op });
    expect(idle.json()).toEqual({ state: 'idle', checked: 0, mismatches: 0 });

    let open!: () => void;
    lightning.gate = new Promise<void>((resolve) => (open = resolve));
    const started = await app.inject({ method: 'POST', url: '/v1/reconciliation', headers: op });
    expect(started.statusCode).toBe(202);
    expect(started.json()).toMatchObject({ state: 'running', checked: 0, startedAt: expect.any(Number) });
    const twice = await app.inject({ method: 'POST', url: '/v1/reconciliation', headers: op });
    expect(twice.statusCode).toBe(409);
    expect(twice.json()).toMatchObject({ error: { code: 'RECONCILIATION_RUNNING' } });
    const running = await app.inject({ url: '/v1/reconciliation', headers: op });
    expect(running.json()).toMatchObject({ state: 'running' });
    expect(running.json()).not.toHaveProperty('finishedAt');

    lightning.gate = undefined;
    open();
    let state = running.json<{ state: string; checked: number }>();
    while (state.state === 'running') {
      await new Promise((r) => setImmediate(r));
      state = (await app.inject({ url: '/v1/reconciliation', headers: op })).json();
    }
    expect(state).toMatchObject({
      state: 'done',
      checked: 250,
      mismatches: 0,
      finishedAt: expect.any(Number),
    });
    // Operator only: an account's admin key may not start or see it.
    const minted = await app.inject({
      method: 'POST',
      url: '/v1/accounts/a/keys',
      headers: op,
      payload: { scopes: ['admin'] },
    });
    const admin = { authorization: `Bearer ${minted.json<{ key: string }>().key}` };
    expect((await app.inject({ method: 'POST', url: '/v1/reconciliation', headers: admin })).statusCode).toBe(
      403,
    );
    expect((await app.inject({ url: '/v1/reconciliation', headers: admin })).statusCode).toBe(403);
    const again = await app.inject({ method: 'POST', url: '/v1/reconciliation', headers: op });
    expect(again.statusCode).toBe(202); // a finished job does not block the next
    f.service.stop();
    await app.close();
  }, 120_000);

  it('keeps one attempt per payment hash across a restart', async () => {
    const store = new MemoryLedgerStore();
    const lightning = new FakeLightning();
    const f = await paymentsFixture({}, store, lightning);
    await f.account('a', 1_000_000n);
    const inflight = fakeRequest({ amountMsat: 10_000n }).request;
    const paid = fakeRequest({ amountMsat: 10_000n }).request;
    await f.service.pay('a', { request: paid, maxFeeMsat: FEE });
    lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    // Two concurrent attempts at one invoice: one goes out, the other is refused.
    const both = await Promise.allSettled([
      f.service.pay('a', { request: inflight, maxFeeMsat: FEE }),
      f.service.pay('a', { request: inflight, maxFeeMsat: FEE }),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    f.service.stop();

    const again = await paymentsFixture({}, store, lightning);
    expect(again.service.residentPayments).toBe(1);
    await expect(again.service.pay('a', { request: paid, maxFeeMsat: FEE })).rejects.toMatchObject({
      code: 'ALREADY_PAID',
    });
    await expect(again.service.pay('a', { request: inflight, maxFeeMsat: FEE })).rejects.toMatchObject({
      code: 'PAYMENT_IN_PROGRESS',
    });
    expect(lightning.payCalls).toBe(2);
    again.service.stop();
  }, 120_000);

  it('keeps only open approvals in memory and pages closed ones from disk, by state', async () => {
    const store = new MemoryLedgerStore();
    const clock = ticking();
    const f = await paymentsFixture(clock, store);
    await f.account('a', 10_000_000n, { rules: [{ type: 'approval_above', thresholdMsat: msat(5_000) }] });
    const held: Payment[] = [];
    for (let i = 0; i < 5; i++) held.push(await pay(f, 'a', 10_000n));
    for (const p of held.slice(0, 4)) await f.service.denyApproval(p.approvalId!, 'operator');
    f.service.stop();

    const again = await paymentsFixture(clock, store);
    expect(again.service.residentPayments).toBe(1); // the one still awaiting approval
    const pending = await again.service.listApprovals({ state: 'pending' });
    expect(pending.approvals.map((a) => a.id)).toEqual([held[4]!.approvalId]);
    const denied: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await again.service.listApprovals({
        state: 'denied',
        limit: 3,
        ...(cursor ? { cursor } : {}),
      });
      denied.push(...page.approvals.map((a) => a.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(denied).toEqual(
      held
        .slice(0, 4)
        .reverse()
        .map((p) => p.approvalId),
    );
    // A closed approval is still known: approving it again says why it cannot be.
    await expect(again.service.approve(held[0]!.approvalId!, 'operator')).rejects.toMatchObject({
      code: 'APPROVAL_NOT_PENDING',
    });
    again.service.stop();
  }, 120_000);
});
