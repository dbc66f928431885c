import { createHash, randomBytes } from 'node:crypto';
import { createHodlInvoice, createInvoice, getInvoice, getPayment, settleHodlInvoice } from 'ln-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { regtestCluster, type ClusterInstance, type RegtestCluster } from '../../support/cluster.js';
import { eventually, rawLnd } from '../../support/regtest.js';

/**
 * Outbound payments on two gateway instances (every service of the composition root) sharing one
 * PostgreSQL and alice's LND: a payment whose instance dies while it is in flight is booked by the
 * leader's reconciliation exactly as LND settled it, and an approval asked for on one instance is
 * decided on the other.
 */
describe('payments across instances on regtest (one PostgreSQL, one LND)', () => {
  let cluster: RegtestCluster;
  const leads = (i: ClusterInstance): boolean =>
    i.leadership.active.includes('payment reconciliation, approval expiry, invoice pruning');

  beforeAll(async () => {
    cluster = await regtestCluster('cluster-payments');
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('a payment in flight on an instance that dies is booked by the leader as LND settled it, once', async () => {
    const a = await cluster.start({}, { payTimeoutMs: 2_000 });
    await eventually(() => (leads(a) ? true : undefined), 10_000, 'a leads');
    const b = await cluster.start({}, { payTimeoutMs: 2_000 });
    expect(leads(b)).toBe(false);
    await cluster.account(a, 'agent-x', 1_000_000_000n, tierPolicy('L3'));

    // Through the follower: carol holds the HTLC, so the payment is still in flight when b dies.
    const carol = await rawLnd('carol');
    const preimage = randomBytes(32);
    const id = createHash('sha256').update(preimage).digest('hex');
    const hold = await createHodlInvoice({ lnd: carol, id, mtokens: '30000000', description: 'held' });
    const p = await b.services.payments.pay('agent-x', { request: hold.request, maxFeeMsat: msat(100_000) });
    expect(p.status).toBe('pending');
    await eventually(
      async () => ((await getInvoice({ lnd: carol, id })).is_held ? true : undefined),
      30_000,
      'held',
    );
    await b.close();

    // LND settles it while nobody tracks it; the leader's reconciliation finds b's open payment.
    await settleHodlInvoice({ lnd: carol, secret: preimage.toString('hex') });
    const alice = await rawLnd('alice');
    const sent = await eventually(
      async () => {
        const r = await getPayment({ lnd: alice, id });
        return r.is_confirmed ? r : undefined;
      },
      30_000,
      'settled in LND',
    );
    await a.services.payments.reconcile({ full: false });
    const booked = await a.services.payments.findPayment(p.id);
    expect(booked).toMatchObject({ status: 'succeeded', preimage: preimage.toString('hex') });
    const feeMsat = BigInt(sent.payment!.fee_mtokens);
    expect(booked!.feeMsat).toBe(feeMsat);
    // The balance is what LND says happened: the amount and its fee, once; nothing still reserved.
    expect(await cluster.db.balance('agent-x')).toBe(1_000_000_000n - 30_000_000n - feeMsat);
    await a.services.payments.reconcile({ full: false });
    expect(await cluster.db.balance('agent-x')).toBe(1_000_000_000n - 30_000_000n - feeMsat);
    const [reserved] = await cluster.admin<{ debits_pending: string }[]>`
      SELECT debits_pending FROM ledger_accounts WHERE id = 'agent-x'`;
    expect(reserved?.debits_pending).toBe('0');
    expect(cluster.fatal).toEqual([]);
  });

  it('an approval asked for on one instance is approved on another, which pays it', async () => {
    const a = cluster.instances[0]!;
    const c = await cluster.start({}, { payTimeoutMs: 2_000 });
    await cluster.account(a, 'agent-y', 500_000_000n, tierPolicy('L3'));
    await a.services.policies.set('agent-y', {
      rules: [{ type: 'approval_above', thresholdMsat: msat(1_000) }],
    });

    const carol = await rawLnd('carol');
    const bill = await createInvoice({ lnd: carol, mtokens: '20000000', description: 'needs approval' });
    const asked = await a.services.payments.pay('agent-y', {
      request: bill.request,
      maxFeeMsat: msat(100_000),
    });
    expect(asked.status).toBe('awaiting_approval');
    const pending = await c.services.payments.listApprovals({ state: 'pending' });
    const approval = pending.approvals.find((x) => x.paymentId === asked.id);
    expect(approval).toBeDefined();

    const paid = await c.services.payments.approve(approval!.id, 'operator');
    const done =
      paid.status === 'succeeded'
        ? paid
        : await eventually(
            async () => {
              const q = await c.services.payments.findPayment(paid.id);
              return q?.status === 'succeeded' ? q : undefined;
            },
            30_000,
            'approved payment settles',
          );
    expect((await getInvoice({ lnd: carol, id: bill.id })).is_confirmed).toBe(true);
    expect(await cluster.db.balance('agent-y')).toBe(500_000_000n - 20_000_000n - done.feeMsat!);
    // Decided once: the first instance cannot decide it again.
    await expect(a.services.payments.approve(approval!.id, 'operator')).rejects.toMatchObject({
      code: 'APPROVAL_NOT_PENDING',
    });
    expect(cluster.fatal).toEqual([]);
  });
});
