import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const FEE = msat(1_000);

describe('PaymentsService', () => {
  it('reserves amount + fee limit, posts the actual fee, and returns the rest', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    const { request } = fakeRequest({ amountMsat: 50_000n });
    let seenMaxFee = 0n;
    f.lightning.behaviour = (hash, amount, maxFee) => {
      seenMaxFee = maxFee;
      expect(availableOf(f.ledger.accountNow('a')!)).toBe(100_000n - 50_000n - 2_000n);
      return {
        status: 'succeeded',
        paymentHash: hash,
        preimage: 'ab'.repeat(32),
        amountMsat: amount,
        feeMsat: msat(300),
      };
    };
    const p = await f.service.pay('a', { request, maxFeeMsat: msat(2_000) });
    expect(seenMaxFee).toBe(2_000n); // LND gets the same fee limit that was reserved
    expect(p).toMatchObject({ status: 'succeeded', feeMsat: 300n, amountMsat: 50_000n });
    expect(balanceOf(await f.ledger.requireAccount('a'))).toBe(100_000n - 50_300n);
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(100_000n - 50_300n);
  });

  it('releases the reservation only on a definitive failure', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    f.lightning.behaviour = (hash) => ({
      status: 'failed',
      paymentHash: hash,
      reason: 'NO_ROUTE',
      message: 'no route',
    });
    const failed = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    expect(failed).toMatchObject({ status: 'failed', failureReason: 'NO_ROUTE' });
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(100_000n);
  });

  it('keeps an unknown outcome pending and settles it when LND reports it', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    f.lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    const p = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    expect(p.status).toBe('pending');
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(89_000n);
    await f.service.reconcile({ full: false });
    expect(f.service.getPayment(p.id)?.status).toBe('pending'); // still in flight: nothing changes
    f.lightning.resolve({
      status: 'succeeded',
      paymentHash: p.paymentHash,
      preimage: 'cd'.repeat(32),
      amountMsat: msat(10_000),
      feeMsat: msat(10),
    });
    await f.service.reconcile({ full: false });
    expect(f.service.getPayment(p.id)).toMatchObject({ status: 'succeeded', feeMsat: 10n });
    expect(balanceOf(await f.ledger.requireAccount('a'))).toBe(89_990n);
    f.service.stop();
  });

  it('a pending payment survives a restart and is settled by the reconciliation at start', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('a', 100_000n);
    f.lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    const p = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    f.service.stop();
    f.lightning.resolve({
      status: 'succeeded',
      paymentHash: p.paymentHash,
      preimage: 'cd'.repeat(32),
      amountMsat: msat(10_000),
      feeMsat: msat(5),
    });
    const restarted = await paymentsFixture({}, store, f.lightning);
    expect(restarted.service.getPayment(p.id)).toMatchObject({ status: 'succeeded', feeMsat: 5n });
    expect(balanceOf(await restarted.ledger.requireAccount('a'))).toBe(89_995n);
    restarted.service.stop();
  });

  it('voids a reservation LND never heard of, but only after the grace period', async () => {
    let now = 1_000_000;
    const f = await paymentsFixture({ now: () => now, notFoundGraceMs: 60_000 });
    await f.account('a', 100_000n);
    f.lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    const p = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    f.lightning.sent.delete(p.paymentHash); // as if the send never reached LND
    await f.service.reconcile({ full: false });
    expect(f.service.getPayment(p.id)?.status).toBe('pending');
    now += 60_001;
    await f.service.reconcile({ full: false });
    expect(f.service.getPayment(p.id)).toMatchObject({
      status: 'failed',
      failureReason: 'NEVER_REACHED_LND',
    });
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(100_000n);
    f.service.stop();
  });

  it('answers a retried idempotency key with the first payment, and refuses a second live attempt on one hash', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    const { request } = fakeRequest({ amountMsat: 10_000n });
    const first = await f.service.pay('a', { request, maxFeeMsat: FEE, idempotencyKey: 'k' });
    const again = await f.service.pay('a', { request, maxFeeMsat: FEE, idempotencyKey: 'k' });
    expect(again).toEqual(first);
    expect(f.lightning.payCalls).toBe(1);
    await expect(f.service.pay('a', { request, maxFeeMsat: FEE })).rejects.toMatchObject({
      code: 'ALREADY_PAID',
      status: 409,
    });
  });

  it('pays an invoice of another account internally, without touching LND, exactly once', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    await f.account('b', 0n);
    const inv = await f.service.createInvoice('b', { amountMsat: msat(7_000), description: 'coffee' });
    expect(inv).not.toHaveProperty('preimage');
    const p = await f.service.pay('a', { request: inv.request });
    expect(p).toMatchObject({ kind: 'internal', status: 'succeeded', feeMsat: 0n, payeeAccountId: 'b' });
    expect(p.preimage).toBe(f.lightning.invoices.get(inv.paymentHash)!.preimage);
    expect(f.lightning.payCalls).toBe(0);
    expect(f.lightning.canceled).toEqual([inv.paymentHash]);
    expect(balanceOf(await f.ledger.requireAccount('b'))).toBe(7_000n);
    await expect(f.service.pay('a', { request: inv.request })).rejects.toMatchObject({
      code: 'ALREADY_PAID',
    });
    await expect(
      f.service.pay('b', { request: (await f.service.createInvoice('b', { amountMsat: msat(1) })).request }),
    ).rejects.toMatchObject({ code: 'OWN_INVOICE' });
  });

  it('credits a settled invoice exactly once, across repeated deliveries and a restart', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('b', 0n);
    const inv = await f.service.createInvoice('b', { amountMsat: msat(5_000) });
    const settled = f.lightning.settle(inv.paymentHash);
    await f.service.onInvoice(settled);
    await f.service.onInvoice(settled);
    expect(balanceOf(await f.ledger.requireAccount('b'))).toBe(5_000n);
    // A new process over the same store and node sees the same invoice again.
    const again = await paymentsFixture({}, store, f.lightning);
    await again.service.onInvoice(settled);
    expect(balanceOf(await again.ledger.requireAccount('b'))).toBe(5_000n);
    expect(await again.service.getInvoice(inv.paymentHash)).toMatchObject({
      state: 'settled',
      settledVia: 'lightning',
      receivedMsat: 5_000n,
    });
  });

  it('catches up on invoices settled while it was down, at start', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('b', 0n);
    const inv = await f.service.createInvoice('b', { amountMsat: msat(3_000) });
    f.lightning.settle(inv.paymentHash);
    const restarted = await paymentsFixture({}, store, f.lightning);
    expect(balanceOf(await restarted.ledger.requireAccount('b'))).toBe(3_000n);
  });

  it('freezes an account and alerts when the ledger and LND disagree', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('a', 100_000n);
    f.lightning.behaviour = (hash) => ({
      status: 'failed',
      paymentHash: hash,
      reason: 'NO_ROUTE',
      message: '',
    });
    const p = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 1_000n }).request,
      maxFeeMsat: FEE,
    });
    // LND later claims the payment succeeded: money left that the ledger returned.
    f.lightning.resolve({
      status: 'succeeded',
      paymentHash: p.paymentHash,
      preimage: 'ee'.repeat(32),
      amountMsat: msat(1_000),
      feeMsat: msat(0),
    });
    const alerts: string[] = [];
    f.events.subscribe('a', (e) => e.type === 'alert' && alerts.push(e.code));
    expect(await f.service.reconcile({ full: true })).toMatchObject({ mismatches: 1 });
    expect((await f.ledger.requireAccount('a')).frozen).toBe(true);
    expect(alerts).toEqual(['RECONCILIATION_MISMATCH']);
    await expect(
      f.service.pay('a', { request: fakeRequest({ amountMsat: 1n }).request, maxFeeMsat: FEE }),
    ).rejects.toMatchObject({ code: 'ACCOUNT_FROZEN' });
  });

  it('holds a payment for approval, then pays on approve; releases on deny and on expiry', async () => {
    let now = 1_000_000;
    const f = await paymentsFixture({ now: () => now, approvalTtlMs: 60_000 });
    await f.account('a', 100_000n, { rules: [{ type: 'approval_above', thresholdMsat: msat(5_000) }] });
    const big = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    expect(big.status).toBe('awaiting_approval');
    expect(f.lightning.payCalls).toBe(0);
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(89_000n); // held while waiting
    const paid = await f.service.approve(big.approvalId!, 'operator');
    expect(paid.status).toBe('succeeded');
    expect(f.lightning.payCalls).toBe(1);

    const denied = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    await f.service.denyApproval(denied.approvalId!, 'operator');
    expect(f.service.getPayment(denied.id)).toMatchObject({
      status: 'denied',
      failureReason: 'APPROVAL_DENIED',
    });
    await expect(f.service.approve(denied.approvalId!, 'operator')).rejects.toMatchObject({
      code: 'APPROVAL_NOT_PENDING',
    });

    const expiring = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10_000n }).request,
      maxFeeMsat: FEE,
    });
    const before = availableOf(await f.ledger.requireAccount('a'));
    now += 60_001;
    await f.service.expireApprovals();
    expect(f.service.getPayment(expiring.id)).toMatchObject({ status: 'expired' });
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(before + 11_000n);
    f.service.stop();
  });

  it.each([
    [{ request: 'garbage' }, 'INVALID_INVOICE'],
    [{ request: fakeRequest({ amountMsat: 1n, expiresAt: Date.now() - 1 }).request }, 'INVOICE_EXPIRED'],
    [{ request: fakeRequest({ amountMsat: 0n }).request }, 'AMOUNT_REQUIRED'],
    [{ request: fakeRequest({ amountMsat: 5n }).request, amountMsat: msat(6) }, 'AMOUNT_MISMATCH'],
  ])('rejects bad input #%# with a 4xx code and changes no balance', async (input, code) => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    await expect(f.service.pay('a', input)).rejects.toMatchObject({ code, status: 400 });
    expect(availableOf(await f.ledger.requireAccount('a'))).toBe(100_000n);
  });

  it('never overdraws nor exceeds a budget, whatever the interleaving of concurrent payments', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(
          fc.record({
            amount: fc.integer({ min: 1, max: 40_000 }),
            outcome: fc.constantFrom('succeeded', 'failed', 'pending'),
          }),
          { minLength: 1, maxLength: 15 },
        ),
        async (s, attempts) => {
          const f = await paymentsFixture();
          await f.account('a', 100_000n, {
            rules: [{ type: 'budget', window: 'day', maxMsat: msat(60_000) }],
          });
          const outcomes = new Map<string, string>();
          f.lightning.behaviour = (hash, amount) =>
            s.schedule(Promise.resolve(outcomes.get(hash))).then((o) =>
              o === 'succeeded'
                ? {
                    status: 'succeeded' as const,
                    paymentHash: hash,
                    preimage: '00'.repeat(32),
                    amountMsat: amount,
                    feeMsat: msat(0),
                  }
                : o === 'failed'
                  ? {
                      status: 'failed' as const,
                      paymentHash: hash,
                      reason: 'NO_ROUTE' as const,
                      message: '',
                    }
                  : { status: 'pending' as const, paymentHash: hash },
            );
          const runs = attempts.map((a) =>
            s.schedule(Promise.resolve(a)).then(async (a) => {
              const r = fakeRequest({ amountMsat: BigInt(a.amount) });
              outcomes.set(r.hash, a.outcome);
              return f.service
                .pay('a', { request: r.request, maxFeeMsat: msat(0) })
                .catch((e: { code: string }) => e.code);
            }),
          );
          // Payments schedule more work once their reservation is durable: keep releasing until all end.
          let done = false;
          const all = Promise.all(runs).then(() => (done = true));
          while (!done) {
            await s.waitAll();
            await new Promise((r) => setImmediate(r));
          }
          await all;
          const acct = await f.ledger.requireAccount('a');
          expect(availableOf(acct)).toBeGreaterThanOrEqual(0n);
          // Reserved (pending) and spent (posted) together never pass the 60,000 msat day budget.
          const committed = acct.debitsPosted - 0n + acct.debitsPending;
          expect(committed).toBeLessThanOrEqual(60_000n);
          f.service.stop();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('leaves the invoice open when an internal payment fails on funds', async () => {
    const f = await paymentsFixture();
    await f.account('poor', 1_000n);
    await f.account('shop', 0n);
    const inv = await f.service.createInvoice('shop', { amountMsat: msat(5_000) });
    await expect(f.service.pay('poor', { request: inv.request })).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
    });
    expect((await f.service.getInvoice(inv.paymentHash))?.state).toBe('open');
    await f.account('rich', 10_000n);
    expect((await f.service.pay('rich', { request: inv.request })).status).toBe('succeeded');
  });

  it('leaves no approval behind when the hold cannot be reserved', async () => {
    let now = 1_000_000;
    const f = await paymentsFixture({ now: () => now, approvalTtlMs: 1_000 });
    await f.account('a', 1_000n, { rules: [{ type: 'approval_above', thresholdMsat: msat(1) }] });
    await expect(
      f.service.pay('a', { request: fakeRequest({ amountMsat: 5_000n }).request, maxFeeMsat: FEE }),
    ).rejects.toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
    expect((await f.service.listApprovals()).approvals).toEqual([]);
    const held = await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10n }).request,
      maxFeeMsat: msat(0),
    });
    now += 1_001;
    await f.service.expireApprovals();
    expect(f.service.getPayment(held.id)?.status).toBe('expired');
    f.service.stop();
  });

  it('refuses an idempotency key reused for a different request, and never shows a keysend preimage', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    await f.service.pay('a', {
      request: fakeRequest({ amountMsat: 10n }).request,
      maxFeeMsat: msat(0),
      idempotencyKey: 'same',
    });
    await expect(
      f.service.pay('a', {
        request: fakeRequest({ amountMsat: 11n }).request,
        maxFeeMsat: msat(0),
        idempotencyKey: 'same',
      }),
    ).rejects.toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
      status: 409,
    });
    f.lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    const ks = await f.service.keysend('a', {
      destination: '03' + '44'.repeat(32),
      amountMsat: msat(100),
      maxFeeMsat: msat(0),
    });
    expect(ks).not.toHaveProperty('keysendPreimage');
    expect(f.service.getPayment(ks.id)).not.toHaveProperty('keysendPreimage');
    expect((await f.service.listPayments('a'))[0]).not.toHaveProperty('keysendPreimage');
    f.service.stop();
  });

  it('requires a policy: an account without one cannot spend', async () => {
    const f = await paymentsFixture();
    await f.account('a', 100_000n);
    await f.policies.set('a', { rules: [] });
    await expect(
      f.service.pay('a', { request: fakeRequest({ amountMsat: 1n }).request }),
    ).rejects.toMatchObject({ code: 'NO_POLICY', status: 403 });
    await f.ledger.flush();
    const audit = await f.audit.query('a', { limit: 5 });
    expect(audit[0]).toMatchObject({ outcome: 'deny', code: 'NO_POLICY', action: 'bolt11' });
    expect(audit[0]!.argsHash).toMatch(/^[0-9a-f]{64}$/);
  });
});
