import { createInvoice as lnCreateInvoice } from 'ln-service';
import type { CreateInvoiceArgs, Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { assertInvoiceAmount, assertInvoiceDescription } from '../limits.js';
import { lndCall } from './map-error.js';
import { decodeInvoice } from './decode-invoice.js';
import { msat } from '../../domain/msat.js';

export const DEFAULT_INVOICE_EXPIRY_SECONDS = 3600;

export function expiresAt(expirySeconds: number | undefined): string {
  return new Date(Date.now() + (expirySeconds ?? DEFAULT_INVOICE_EXPIRY_SECONDS) * 1000).toISOString();
}

export async function createInvoice(ctx: LndContext, args: CreateInvoiceArgs): Promise<Invoice> {
  assertInvoiceAmount(args.amountMsat);
  assertInvoiceDescription(args.description);
  const created = await lndCall('createInvoice', () =>
    lnCreateInvoice({
      lnd: ctx.lnd,
      mtokens: args.amountMsat.toString(),
      description: args.description ?? '',
      expires_at: expiresAt(args.expirySeconds),
    }),
  );
  // A new invoice is open and unpaid; the rest is in the request itself (decoded offline, no
  // second round trip to LND). LND's add index is not in its answer: 0 here.
  const decoded = decodeInvoice(created.request);
  return {
    paymentHash: created.id,
    preimage: created.secret,
    request: created.request,
    description: args.description ?? '',
    amountMsat: args.amountMsat,
    receivedMsat: msat(0),
    state: 'open',
    isKeysend: false,
    createdAt: new Date(created.created_at),
    expiresAt: decoded.expiresAt,
    cltvDelta: decoded.cltvDelta,
    addIndex: 0,
    settleIndex: 0,
    htlcs: [],
  };
}
