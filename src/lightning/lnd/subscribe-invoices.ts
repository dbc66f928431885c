import type { EventEmitter } from 'node:events';
import { subscribeToInvoices } from 'ln-service';
import type { InvoiceSubscriptionOptions } from '../backend.js';
import type { Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { IndexWatermark } from './index-watermark.js';
import { listSettledInvoices } from './list-settled-invoices.js';
import { toLightningError } from './map-error.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';
import { resilientStream, type ResilientSubscription } from './resilient-stream.js';

/**
 * All invoice updates: first every settlement after the persisted cursor, then live. Updates are
 * handled one at a time; the cursor saved after each handler is the contiguous watermark of
 * handled settle indexes, so a crash re-delivers, never skips (LND's catch-up sends settlements
 * out of settle order). A cursor at settle index 0 catches up by scanning every settled invoice,
 * because LND's stream cannot replay from 0. The add index only ever moves forward: new-invoice
 * events are informational (saved at most once a second); settlements are what credits depend on.
 */
/** How often a cursor moved only by new invoices is written. */
const ADD_INDEX_SAVE_MS = 1000;

export function subscribeInvoices(
  ctx: LndContext,
  options: InvoiceSubscriptionOptions,
): ResilientSubscription {
  let addIndex = 0;
  /** When the cursor was last written (ms). */
  let savedAt = 0;
  let settles = new IndexWatermark(0);
  let queue: Promise<void> = Promise.resolve();
  let generation = 0;
  let closed = false;
  const fail = (err: unknown): void => options.onError?.(toLightningError(err, 'subscribeInvoices'));

  const handle = async (invoice: Invoice, gen: number): Promise<void> => {
    if (gen !== generation || closed) return;
    const isSettle = invoice.state === 'settled' && invoice.settleIndex > 0;
    if (
      isSettle ? settles.has(invoice.settleIndex) : invoice.state === 'open' && invoice.addIndex <= addIndex
    )
      return;
    await options.onInvoice(invoice);
    if (closed) return;
    const before = [addIndex, settles.value];
    addIndex = Math.max(addIndex, invoice.addIndex);
    if (isSettle) settles.add(invoice.settleIndex);
    // A settlement moves the cursor durably before the next update. A new invoice alone (every
    // L402 challenge) moves it at most once a second: re-delivering the open invoices of that
    // second after a crash changes nothing, and a fsync'd write per challenge is spared.
    const now = Date.now();
    if (settles.value !== before[1] || (addIndex !== before[0] && now - savedAt >= ADD_INDEX_SAVE_MS)) {
      savedAt = now;
      await options.cursor.save({ addIndex, settleIndex: settles.value });
    }
  };

  const stream = resilientStream({
    open: async (): Promise<EventEmitter> => {
      generation += 1;
      const gen = generation;
      await queue; // finish what the previous stream delivered before reading the cursor
      const cursor = await options.cursor.load();
      addIndex = cursor.addIndex;
      settles = new IndexWatermark(cursor.settleIndex);
      if (cursor.settleIndex === 0) {
        const { settled, maxAddIndex } = await listSettledInvoices(ctx);
        for (const invoice of settled) await handle(invoice, gen);
        addIndex = Math.max(addIndex, cursor.addIndex === 0 ? maxAddIndex : 0);
      }
      return subscribeToInvoices({
        lnd: ctx.lnd,
        added_after: addIndex,
        confirmed_after: settles.value,
        // We restart the stream ourselves, from our persisted cursor.
        restart_delay_ms: 24 * 3600 * 1000,
      });
    },
    attach: (sub) => {
      const gen = generation;
      sub.on('invoice_updated', (raw: RawInvoice) => {
        queue = queue
          .then(() => handle(mapInvoice(raw), gen))
          .catch((err: unknown) => {
            fail(err);
            // A handler failure must not advance the cursor: reopen and replay from it.
            sub.emit('error', err);
          });
      });
    },
    onError: fail,
  });
  return {
    reconnect: () => stream.reconnect(),
    get reconnects() {
      return stream.reconnects;
    },
    close() {
      closed = true;
      stream.close();
    },
  };
}
