import type { InvoiceRecord, Payment } from '../../payments/types.js';
import { jsonSafe } from '../json.js';

/**
 * A payment as its account sees it: the record less its bookkeeping (the reservation, the request
 * fingerprint, the keysend preimage kept until the payment is final, retry markers).
 */
export function paymentView(p: Payment): unknown {
  const copy: Partial<Payment> = { ...p };
  delete copy.reservationId;
  delete copy.fingerprint;
  delete copy.keysendPreimage;
  delete copy.sentAt;
  delete copy.retriesFailedHash;
  return jsonSafe(copy);
}

/** An invoice as its account sees it: never the preimage (kept to prove internal payments). */
export function invoiceView(inv: InvoiceRecord): unknown {
  const copy: Partial<InvoiceRecord> = { ...inv };
  delete copy.preimage;
  return jsonSafe(copy);
}
