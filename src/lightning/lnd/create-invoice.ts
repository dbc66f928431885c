import { createInvoice as lnCreateInvoice } from 'ln-service';
import type { CreateInvoiceArgs, Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { lndCall } from './map-error.js';
import { lookupInvoice } from './lookup-invoice.js';

export const DEFAULT_INVOICE_EXPIRY_SECONDS = 3600;

export function expiresAt(expirySeconds: number | undefined): string {
  return new Date(Date.now() + (expirySeconds ?? DEFAULT_INVOICE_EXPIRY_SECONDS) * 1000).toISOString();
}

export async function createInvoice(ctx: LndContext, args: CreateInvoiceArgs): Promise<Invoice> {
  const created = await lndCall('createInvoice', () =>
    lnCreateInvoice({
      lnd: ctx.lnd,
      mtokens: args.amountMsat.toString(),
      description: args.description ?? '',
      expires_at: expiresAt(args.expirySeconds),
    }),
  );
  // LND's add response lacks state and indexes; read the invoice back for a complete record.
  return lookupInvoice(ctx, created.id);
}
