import { createHodlInvoice } from 'ln-service';
import { LightningError, LightningErrorCode } from '../errors.js';
import type { CreateHoldInvoiceArgs, Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { expiresAt } from './create-invoice.js';
import { assertHash, lookupInvoice } from './lookup-invoice.js';
import { assertInvoiceAmount, assertInvoiceDescription } from '../limits.js';
import { lndCall } from './map-error.js';

/** LND's default final CLTV delta for invoices. */
export const DEFAULT_HOLD_CLTV_DELTA = 80;

/** An invoice for a hash whose preimage we keep: LND holds incoming HTLCs until we settle or cancel. */
export async function createHoldInvoice(ctx: LndContext, args: CreateHoldInvoiceArgs): Promise<Invoice> {
  assertHash(args.paymentHash);
  assertInvoiceAmount(args.amountMsat);
  assertInvoiceDescription(args.description);
  const cltvDelta = args.cltvDelta ?? DEFAULT_HOLD_CLTV_DELTA;
  if (!Number.isInteger(cltvDelta) || cltvDelta < 18 || cltvDelta > 2016) {
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      'cltvDelta must be an integer between 18 and 2016',
    );
  }
  await lndCall('createHoldInvoice', () =>
    createHodlInvoice({
      lnd: ctx.lnd,
      id: args.paymentHash,
      mtokens: args.amountMsat.toString(),
      description: args.description ?? '',
      cltv_delta: cltvDelta,
      expires_at: expiresAt(args.expirySeconds),
    }),
  );
  return lookupInvoice(ctx, args.paymentHash);
}
