import { PaymentError, PaymentErrorCode } from './errors.js';
import type { Approval, Payment } from './types.js';

/** The outbound payments and approvals, by id and by payment hash. */
export class PaymentStore {
  readonly payments = new Map<string, Payment>();
  readonly byHash = new Map<string, string>();
  readonly approvals = new Map<string, Approval>();

  getPayment(id: string): Payment | undefined {
    const p = this.payments.get(id);
    return p ? publicPayment(p) : undefined;
  }

  listPayments(accountId: string, limit = 100): Payment[] {
    return [...this.payments.values()]
      .filter((p) => p.accountId === accountId)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit)
      .map(publicPayment);
  }

  replayPayment(id: string): Payment {
    const p = this.payments.get(id);
    if (!p) throw new PaymentError(PaymentErrorCode.PAYMENT_NOT_FOUND, `no payment ${id}`);
    return publicPayment(p);
  }

  mustPayment(id: string): Payment {
    const p = this.payments.get(id);
    if (!p) throw new PaymentError(PaymentErrorCode.PAYMENT_NOT_FOUND, `no payment ${id}`);
    return p;
  }

  index(p: Payment): void {
    this.payments.set(p.id, p);
    this.byHash.set(p.paymentHash, p.id);
  }
}

/** A payment as callers and events see it: never the keysend preimage we hold while in flight. */
export function publicPayment(p: Payment): Payment {
  const copy = { ...p };
  delete copy.keysendPreimage;
  return copy;
}
