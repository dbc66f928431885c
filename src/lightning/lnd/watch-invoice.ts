import { subscribeToInvoice } from 'ln-service';
import type { Hex, Invoice, Subscription } from '../types.js';
import type { LndContext } from './context.js';
import { assertHash } from './lookup-invoice.js';
import { toLightningError } from './map-error.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';
import { resilientStream } from './resilient-stream.js';

/**
 * Streams the state of one invoice. LND sends the current state first on every (re)subscription,
 * so a watcher that reconnects never misses a final state; it may see a state twice.
 */
export function watchInvoice(
  ctx: LndContext,
  paymentHash: Hex,
  onUpdate: (invoice: Invoice) => void,
  onError?: (err: Error) => void,
): Subscription {
  assertHash(paymentHash);
  return resilientStream({
    open: () => subscribeToInvoice({ lnd: ctx.lnd, id: paymentHash }),
    attach: (sub) => sub.on('invoice_updated', (raw: RawInvoice) => onUpdate(mapInvoice(raw))),
    onError: (err) => onError?.(toLightningError(err, 'watchInvoice')),
  });
}
