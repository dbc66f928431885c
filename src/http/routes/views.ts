import type { InvoiceRecord, Payment } from '../../payments/types.js';
import { jsonSafe, type Jsonified } from '../json.js';

/**
 * A payment as its account sees it: the record less its bookkeeping (the reservation, the keysend
 * preimage kept until the payment is final, retry markers).
 */
type PaymentView = Omit<Payment, 'reservationId' | 'keysendPreimage' | 'sentAt' | 'retriesFailedHash'>;

export function paymentView(p: Payment): Jsonified<PaymentView> {
  const copy: Partial<Payment> = { ...p };
  delete copy.reservationId;
  delete copy.keysendPreimage;
  delete copy.sentAt;
  delete copy.retriesFailedHash;
  return jsonSafe(copy as PaymentView);
}

/** An invoice as its account sees it: never the preimage (kept to prove internal payments). */
export function invoiceView(inv: InvoiceRecord): Jsonified<Omit<InvoiceRecord, 'preimage'>> {
  const copy: Partial<InvoiceRecord> = { ...inv };
  delete copy.preimage;
  return jsonSafe(copy as Omit<InvoiceRecord, 'preimage'>);
}
