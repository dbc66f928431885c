import { getInvoices } from 'ln-service';
import type { Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { lndCall } from './map-error.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';

/**
 * Every settled invoice LND has, in settle order, plus the highest add index seen. LND's stream
 * cannot replay from settle index 0, so a subscription without a position catches up through
 * this scan instead of starting "from now" and losing what settled before its first event.
 */
export async function listSettledInvoices({
  lnd,
}: LndContext): Promise<{ settled: Invoice[]; maxAddIndex: number }> {
  const settled: Invoice[] = [];
  let maxAddIndex = 0;
  let token: string | undefined;
  do {
    const page = await lndCall('listInvoices', () =>
      getInvoices(token ? { lnd, token } : { lnd, limit: 500 }),
    );
    for (const raw of page.invoices as unknown as RawInvoice[]) {
      const invoice = mapInvoice(raw);
      maxAddIndex = Math.max(maxAddIndex, invoice.addIndex);
      if (invoice.state === 'settled' && invoice.settleIndex > 0) settled.push(invoice);
    }
    token = page.next;
  } while (token);
  settled.sort((a, b) => a.settleIndex - b.settleIndex);
  return { settled, maxAddIndex };
}
