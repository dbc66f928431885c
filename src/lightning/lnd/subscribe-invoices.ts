import type { EventEmitter } from 'node:events';
import { subscribeToInvoices } from 'ln-service';
import type { InvoiceSubscriptionOptions } from '../backend.js';
import type { InvoiceCursor, Subscription } from '../types.js';
import type { LndContext } from './context.js';
import { toLightningError } from './map-error.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';
import { resilientStream } from './resilient-stream.js';

/**
 * All invoice updates, starting with everything added or settled after the persisted cursor
 * (LND replays those), then live. Updates are handled one at a time; the cursor is saved after
 * each handler resolves, so a crash re-delivers at most the update in hand.
 */
export function subscribeInvoices(ctx: LndContext, options: InvoiceSubscriptionOptions): Subscription {
  let cursor: InvoiceCursor | undefined;
  let queue: Promise<void> = Promise.resolve();
  let generation = 0;
  const fail = (err: unknown): void => options.onError?.(toLightningError(err, 'subscribeInvoices'));

  const handle = async (raw: RawInvoice, gen: number): Promise<void> => {
    if (gen !== generation || !cursor) return;
    const invoice = mapInvoice(raw);
    // Replays can overlap live updates after a reconnect: skip what the cursor already covers.
    const isSettle = invoice.state === 'settled' && invoice.settleIndex > 0;
    if (
      isSettle
        ? invoice.settleIndex <= cursor.settleIndex
        : invoice.addIndex <= cursor.addIndex && invoice.state === 'open'
    )
      return;
    await options.onInvoice(invoice);
    const next: InvoiceCursor = {
      addIndex: Math.max(cursor.addIndex, invoice.addIndex),
      settleIndex: isSettle ? Math.max(cursor.settleIndex, invoice.settleIndex) : cursor.settleIndex,
    };
    if (next.addIndex !== cursor.addIndex || next.settleIndex !== cursor.settleIndex) {
      await options.cursor.save(next);
      cursor = next;
    }
  };

  return resilientStream({
    open: async (): Promise<EventEmitter> => {
      generation += 1;
      await queue; // finish what the previous stream delivered before reading the cursor
      cursor = await options.cursor.load();
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
