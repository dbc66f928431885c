import { subscribeToInvoice } from 'ln-service';
import type { Hex, Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { assertHash } from './lookup-invoice.js';
import { toLightningError } from './map-error.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';
import { resilientStream, type ResilientSubscription } from './resilient-stream.js';

/**
 * Streams the state of one invoice. LND sends the current state first on every (re)subscription,
 * so a watcher that reconnects never misses a final state; it may see a state twice. The watch
 * ends by itself after a final state (settled or canceled): LND closes the stream then.
 */
export function watchInvoice(
  ctx: LndContext,
  paymentHash: Hex,
  onUpdate: (invoice: Invoice) => void,
  onError?: (err: Error) => void,
): ResilientSubscription {
  assertHash(paymentHash);
  let done = false;
  const stream: ResilientSubscription = resilientStream({
    open: () => subscribeToInvoice({ lnd: ctx.lnd, id: paymentHash }),
    attach: (sub) =>
      sub.on('invoice_updated', (raw: RawInvoice) => {
        if (done) return;
        const invoice = mapInvoice(raw);
        if (invoice.state === 'settled' || invoice.state === 'canceled') {
          done = true;
          stream.close();
        }
        onUpdate(invoice);
      }),
    onError: (err) => onError?.(toLightningError(err, 'watchInvoice')),
  });
  return stream;
}
