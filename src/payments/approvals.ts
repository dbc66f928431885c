import { randomUUID } from 'node:crypto';
import type { SideRecords } from '../ledger/ledger.js';
import { LIGHTNING_ACCOUNT } from '../ledger/system-accounts.js';
import type { SpendRequest } from '../policy/types.js';
import { PaymentsPart, type PaymentsContext } from './context.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import type { Outbound } from './outbound.js';
import { finalize, publicPayment, resume, type PaymentStore } from './payment-store.js';
import type { Approval, LivePayment, Payment } from './types.js';

/** Payments a policy sent to the operator: approve (reserve and send), deny, or expire. */
export class Approvals extends PaymentsPart {
  constructor(
    ctx: PaymentsContext,
    private readonly store: PaymentStore,
    private readonly outbound: Outbound,
  ) {
    super(ctx);
  }

  /**
   * Approvals, newest first, a page at a time: the pending ones from memory (they expire within
   * the approval TTL; on a shared store every instance's, from the index of open ones), the others
   * from disk (scanning pages for the asked state).
   */
  async listApprovals(
    query: { state?: Approval['state']; limit?: number; cursor?: string } = {},
  ): Promise<{ approvals: Approval[]; nextCursor?: string }> {
    const limit = query.limit ?? 100;
    if (query.state === 'pending') {
      const all: Approval[] = [];
      for await (const a of this.openApprovals()) all.push(a);
      const open = all
        .filter((a) => a.state === 'pending')
        .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
      return { approvals: open.slice(0, limit).map((a) => ({ ...a })) };
    }
    const out: Approval[] = [];
    let cursor = query.cursor;
    for (;;) {
      const page = await this.store.pageApprovals(undefined, limit, cursor);
      for (const [i, a] of page.approvals.entries()) {
        if (query.state !== undefined && a.state !== query.state) continue;
        out.push({ ...a });
        if (out.length === limit) {
          const at = page.cursors[i];
          const more = i < page.approvals.length - 1 || page.nextCursor !== undefined;
          return { approvals: out, ...(more && at !== undefined ? { nextCursor: at } : {}) };
        }
      }
      if (page.nextCursor === undefined) return { approvals: out };
      cursor = page.nextCursor;
    }
  }

  async approve(approvalId: string, by: string): Promise<Payment> {
    return this.shared(approvalId, () => this.approveNow(approvalId, by));
  }

  /**
   * A shared store: runs `fn` under the lease of the approval's account (which alone may void the
   * hold), with the approval and its payment read afresh into memory (another instance may have
   * created or decided it). A store one process owns: runs `fn`.
   */
  private async shared<T>(approvalId: string, fn: () => Promise<T>): Promise<T> {
    if (!this.ledger.shared) return fn();
    const seen = await this.store.findApproval(approvalId);
    if (!seen) return fn(); // not found: said by `fn`
    return this.ledger.underLease(seen.accountId, async () => {
      const approval = await this.store.rereadApproval(approvalId);
      if (approval) await this.store.reread(approval.paymentId);
      return fn();
    });
  }

  private async approveNow(approvalId: string, by: string): Promise<Payment> {
    // The release of the hold and the new reservation are one synchronous step on resident state.
    const asked = this.store.openApproval(approvalId);
    if (asked) await this.ctx.prepare([asked.accountId], [LIGHTNING_ACCOUNT]);
    const approval = this.pendingApproval(approvalId);
    if (approval instanceof Promise) return approval;
    const waiting = this.waitingPayment(approval);
    const req: SpendRequest = {
      kind: waiting.kind === 'keysend' ? 'keysend' : 'bolt11',
      amountMsat: waiting.amountMsat,
      feeLimitMsat: waiting.feeLimitMsat,
      payee: { pubkey: waiting.destination },
    };
    // Release the hold and take the real reservation in the same tick: one atomic batch.
    const hold = this.ledger.getTransferSync(waiting.reservationId);
    if (hold?.state === 'pending') this.ledger.void(hold.id, 'approved: replaced by reservation');
    const decision = this.decide(waiting.accountId, req, true, waiting.id);
    approval.state = decision.outcome === 'allow' ? 'approved' : 'denied';
    approval.decidedAt = this.now();
    approval.decidedBy = by;
    if (decision.outcome !== 'allow') {
      finalize(waiting, { status: 'denied', failureReason: 'APPROVAL_DENIED' }, this.now());
      const written = this.ledger.putRecords([
        ...this.store.approvalRecords(approval),
        ...this.store.records(waiting),
      ]);
      this.store.remember(waiting);
      this.store.rememberApproval(approval);
      await written;
      this.deny(decision);
    }
    const payment = resume(waiting, randomUUID(), this.now());
    const applied = this.outbound.reserveFunds(payment, [
      ...this.store.records(payment),
      ...this.store.approvalRecords(approval),
    ]);
    this.store.remember(payment);
    this.store.rememberApproval(approval);
    await applied.durable;
    this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    return this.outbound.send(payment);
  }

  async denyApproval(approvalId: string, by: string): Promise<Payment> {
    return this.shared(approvalId, async () => {
      const asked = this.store.openApproval(approvalId);
      // A shared store: the hold's accounts read under the lease, then decided in one step.
      if (asked && this.ledger.shared) await this.ctx.prepare([asked.accountId], [LIGHTNING_ACCOUNT]);
      const approval = this.pendingApproval(approvalId);
      if (approval instanceof Promise) return approval;
      return this.closeApproval(approval, 'denied', by);
    });
  }

  /**
   * Expires approvals whose time passed, releasing their holds: this instance's, or on a shared
   * store every instance's (the leader's duty), each under its account's lease.
   */
  async expireApprovals(): Promise<void> {
    const now = this.now();
    for await (const a of this.openApprovals()) {
      if (a.state !== 'pending' || a.expiresAt > now) continue;
      await this.shared(a.id, async () => {
        if (this.ledger.shared) await this.ctx.prepare([a.accountId], [LIGHTNING_ACCOUNT]);
        const open = this.store.openApproval(a.id);
        if (open?.state !== 'pending') return; // decided meanwhile
        await this.closeApproval(open, 'expired', 'system');
      }).catch((err: unknown) => this.log.error({ err, approvalId: a.id }, 'could not expire an approval'));
    }
  }

  /** The open approvals: from memory; on a shared store every instance's, from disk, a page at a time. */
  private async *openApprovals(): AsyncGenerator<Approval> {
    if (this.ledger.shared) yield* this.store.openApprovalsOnDisk();
    else yield* this.store.openApprovals();
  }

  private async closeApproval(approval: Approval, state: 'denied' | 'expired', by: string): Promise<Payment> {
    const payment = this.waitingPayment(approval);
    approval.state = state;
    approval.decidedAt = this.now();
    approval.decidedBy = by;
    finalize(
      payment,
      state === 'denied'
        ? { status: 'denied', failureReason: 'APPROVAL_DENIED' }
        : { status: 'expired', failureReason: 'APPROVAL_EXPIRED' },
      this.now(),
    );
    const records: SideRecords = [...this.store.approvalRecords(approval), ...this.store.records(payment)];
    const hold = this.ledger.getTransferSync(payment.reservationId);
    const written =
      hold?.state === 'pending'
        ? this.ledger.void(hold.id, `approval ${state}`, records).durable
        : this.ledger.putRecords(records);
    this.store.remember(payment);
    this.store.rememberApproval(approval);
    await written;
    this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    this.events.publish(payment.accountId, { type: 'payment', payment: publicPayment(payment) });
    return publicPayment(payment);
  }

  /** The payment an open approval holds: live, in memory, until the approval closes. */
  private waitingPayment(approval: Approval): LivePayment {
    const p = this.store.livePayment(approval.paymentId);
    if (!p) throw new PaymentError(PaymentErrorCode.PAYMENT_NOT_FOUND, `no payment ${approval.paymentId}`);
    return p;
  }

  /**
   * An approval still pending, from memory where every open one is, synchronously (the caller's
   * decision follows in the same tick); a closed or unknown one is looked up on disk to say which.
   */
  private pendingApproval(id: string): Approval | Promise<never> {
    const a = this.store.openApproval(id);
    if (!a) return this.notOpen(id);
    if (a.state !== 'pending')
      throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} is ${a.state}`);
    if (a.expiresAt <= this.now())
      throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} has expired`);
    return a;
  }

  private async notOpen(id: string): Promise<never> {
    const closed = await this.store.findApproval(id);
    if (!closed) throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_FOUND, `no approval ${id}`);
    throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} is ${closed.state}`);
  }
}
