import { subscribeToPayViaRequest } from 'ln-service';
import { LightningError, LightningErrorCode } from '../errors.js';
import type { PayInvoiceArgs, PaymentOutcome } from '../types.js';
import { awaitPayment } from './await-payment.js';
import type { LndContext } from './context.js';
import { decodeInvoice } from './decode-invoice.js';
import { failed } from './payment-outcome.js';
import { getPaymentStatus } from './track-payment.js';

export const DEFAULT_PATHFINDING_TIMEOUT_MS = 30_000;

export async function payInvoice(ctx: LndContext, args: PayInvoiceArgs): Promise<PaymentOutcome> {
  const decoded = decodeInvoice(args.request);
  if (decoded.amountMsat === 0n && args.amountMsat === undefined) {
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      'the invoice has no amount: give amountMsat',
    );
  }
  if (decoded.amountMsat !== 0n && args.amountMsat !== undefined && args.amountMsat !== decoded.amountMsat) {
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      'amountMsat differs from the invoice amount',
    );
  }
  if (decoded.isExpired) return confirmNotSent(ctx, failed(decoded.paymentHash, 'INVOICE_EXPIRED'));
  const sub = subscribeToPayViaRequest({
    lnd: ctx.lnd,
    request: args.request.trim(),
    max_fee_mtokens: args.maxFeeMsat.toString(),
    pathfinding_timeout: args.pathfindingTimeoutMs ?? DEFAULT_PATHFINDING_TIMEOUT_MS,
    ...(decoded.amountMsat === 0n && args.amountMsat !== undefined
      ? { mtokens: args.amountMsat.toString() }
      : {}),
  });
  return awaitPayment(sub, decoded.paymentHash, args.timeoutMs, (o) => confirmNotSent(ctx, o));
}

/**
 * LND checks expiry, amount and self-payment before it looks for an earlier attempt with the same
 * hash, so a retry can be refused while the first attempt is in flight or has succeeded. Only
 * report `failed` when LND has no such attempt, or it failed too.
 */
export async function confirmNotSent(ctx: LndContext, outcome: PaymentOutcome): Promise<PaymentOutcome> {
  const earlier = await getPaymentStatus(ctx, outcome.paymentHash).catch((): PaymentOutcome => ({
    status: 'pending',
    paymentHash: outcome.paymentHash,
  }));
  return earlier.status === 'not_found' || earlier.status === 'failed' ? outcome : earlier;
}
