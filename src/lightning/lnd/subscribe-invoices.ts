import type { EventEmitter } from 'node:events';
import { subscribeToInvoices } from 'ln-service';
import type { InvoiceSubscriptionOptions } from '../backend.js';
import type { Invoice, Subscription } from '../types.js';
import type { LndContext } from './context.js';
import { IndexWatermark } from './index-watermark.js';
import { toLightningError } from './map-error.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';
import { resilientStream } from './resilient-stream.js';

/**
 * All invoice updates: first everything added or settled after the persisted cursor (LND replays
 * those), then live. Updates are handled one at a time; the cursor saved after each handler is
 * the contiguous watermark of handled indexes, so a crash re-delivers, never skips. A brand-new
 * cursor (0/0) means "from now on": LND replays nothing for it.
 */
export function subscribeInvoices(ctx: LndContext, options: InvoiceSubscriptionOptions): Subscription {
  let adds = new IndexWatermark(0);
  let settles = new IndexWatermark(0);
  let queue: Promise<void> = Promise.resolve();
  let generation = 0;
  const fail = (err: unknown): void => options.onError?.(toLightningError(err, 'subscribeInvoices'));

  const isNew = (invoice: Invoice): boolean => {
    if (invoice.state === 'settled' && invoice.settleIndex > 0) return !settles.has(invoice.settleIndex);
    if (invoice.state === 'open' && invoice.addIndex > 0) return !adds.has(invoice.addIndex);
    return true; // accepted / canceled are never replayed by LND
  };

  const handle = async (raw: RawInvoice, gen: number): Promise<void> => {
    if (gen !== generation) return;
    const invoice = mapInvoice(raw);
    const isOpen = invoice.state === 'open' && invoice.addIndex > 0;
    const isSettle = invoice.state === 'settled' && invoice.settleIndex > 0;
    if (isOpen) adds.startAt(invoice.addIndex);
    if (isSettle) settles.startAt(invoice.settleIndex);
    if (!isNew(invoice)) return;
    await options.onInvoice(invoice);
    const before = [adds.value, settles.value];
    // The add cursor follows new invoices only; settlements have their own (what credits depend on).
    if (isOpen) adds.add(invoice.addIndex);
    if (isSettle) settles.add(invoice.settleIndex);
    if (adds.value !== before[0] || settles.value !== before[1]) {
      await options.cursor.save({ addIndex: adds.value, settleIndex: settles.value });
    }
  };

  return resilientStream({
    open: async (): Promise<EventEmitter> => {
      generation += 1;
      await queue; // finish what the previous stream delivered before reading the cursor
      const cursor = await options.cursor.load();
      adds = new IndexWatermark(cursor.addIndex);
      settles = new IndexWatermark(cursor.settleIndex);
      return subscribeToInvoices({
        lnd: ctx.lnd,
        added_after: cursor.addIndex,
        confirmed_after: cursor.settleIndex,
        // We restart the stream ourselves, from our persisted cursor.
        restart_delay_ms: 24 * 3600 * 1000,
      });
    },
    attach: (sub) => {
      const gen = generation;
      sub.on('invoice_updated', (raw: RawInvoice) => {
        queue = queue
          .then(() => handle(raw, gen))
          .catch((err: unknown) => {
            fail(err);
            // A handler failure must not advance the cursor: reopen and replay from it.
            sub.emit('error', err);
          });
      });
    },
    onError: fail,
  });
}
