import { randomUUID } from 'node:crypto';
import type { SideRecords } from '../ledger/ledger.js';
import type { SpendRequest } from '../policy/types.js';
import { encode, keys } from './codec.js';
import { PaymentsPart, type PaymentsContext } from './context.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import type { Outbound } from './outbound.js';
import { publicPayment, type PaymentStore } from './payment-store.js';
import type { Approval, Payment } from './types.js';

/** Payments a policy sent to the operator: approve (reserve and send), deny, or expire. */
export class Approvals extends PaymentsPart {
  constructor(
    ctx: PaymentsContext,
    private readonly store: PaymentStore,
    private readonly outbound: Outbound,
  ) {
    super(ctx);
  }

  listApprovals(state?: Approval['state']): Approval[] {
    return [...this.store.approvals.values()]
      .filter((a) => !state || a.state === state)
      .map((a) => ({ ...a }));
  }

  async approve(approvalId: string, by: string): Promise<Payment> {
    const approval = this.pendingApproval(approvalId);
    const payment = this.store.mustPayment(approval.paymentId);
    const req: SpendRequest = {
      kind: payment.kind === 'keysend' ? 'keysend' : 'bolt11',
      amountMsat: payment.amountMsat,
      feeLimitMsat: payment.feeLimitMsat,
      payee: { pubkey: payment.destination },
    };
    // Release the hold and take the real reservation in the same tick: one atomic batch.
    const hold = this.ledger.getTransferSync(payment.reservationId);
    if (hold?.state === 'pending') this.ledger.void(hold.id, 'approved: replaced by reservation');
    const decision = this.decide(payment.accountId, req, true, payment.id);
    approval.state = decision.outcome === 'allow' ? 'approved' : 'denied';
    approval.decidedAt = this.now();
    approval.decidedBy = by;
    if (decision.outcome !== 'allow') {
      this.finish(payment, 'denied', { failureReason: 'APPROVAL_DENIED' });
      await this.ledger.putRecords([
        { key: keys.approval(approval.id), value: encode(approval) },
        { key: keys.payment(payment.id), value: encode(payment) },
      ]);
      this.deny(decision);
    }
    payment.status = 'pending';
    payment.reservationId = randomUUID();
    payment.updatedAt = this.now();
    const applied = this.outbound.reserveFunds(payment, [
      { key: keys.payment(payment.id), value: encode(payment) },
      { key: keys.approval(approval.id), value: encode(approval) },
    ]);
    await applied.durable;
    this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    return this.outbound.send(payment);
  }

  async denyApproval(approvalId: string, by: string): Promise<Payment> {
    const approval = this.pendingApproval(approvalId);
    return this.closeApproval(approval, 'denied', by);
  }

  /** Expires approvals whose time passed, releasing their holds. */
  async expireApprovals(): Promise<void> {
    const now = this.now();
    for (const a of this.store.approvals.values()) {
      if (a.state === 'pending' && a.expiresAt <= now) {
        await this.closeApproval(a, 'expired', 'system').catch((err: unknown) =>
          this.log.error({ err, approvalId: a.id }, 'could not expire an approval'),
        );
      }
    }
  }
  private async closeApproval(approval: Approval, state: 'denied' | 'expired', by: string): Promise<Payment> {
    const payment = this.store.mustPayment(approval.paymentId);
    approval.state = state;
    approval.decidedAt = this.now();
    approval.decidedBy = by;
    this.finish(payment, state, {
      failureReason: state === 'denied' ? 'APPROVAL_DENIED' : 'APPROVAL_EXPIRED',
    });
    const records: SideRecords = [
      { key: keys.approval(approval.id), value: encode(approval) },
      { key: keys.payment(payment.id), value: encode(payment) },
    ];
    const hold = this.ledger.getTransferSync(payment.reservationId);
    if (hold?.state === 'pending') await this.ledger.void(hold.id, `approval ${state}`, records).durable;
    else await this.ledger.putRecords(records);
    this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    this.events.publish(payment.accountId, { type: 'payment', payment: publicPayment(payment) });
    return publicPayment(payment);
  }

  private pendingApproval(id: string): Approval {
    const a = this.store.approvals.get(id);
    if (!a) throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_FOUND, `no approval ${id}`);
    if (a.state !== 'pending')
      throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} is ${a.state}`);
    if (a.expiresAt <= this.now())
      throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} has expired`);
    return a;
  }
}
