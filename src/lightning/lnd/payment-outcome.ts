import { msat } from '../../domain/msat.js';
import type { Hex, PaymentFailureReason, PaymentOutcome } from '../types.js';
import { detailsOf } from './map-error.js';

/** The failure flags ln-service reports for a failed payment. */
export interface RawFailure {
  is_canceled?: boolean;
  is_insufficient_balance?: boolean;
  is_invalid_payment?: boolean;
  is_pathfinding_timeout?: boolean;
  is_route_not_found?: boolean;
}

export interface RawConfirmed {
  id?: string;
  secret: string;
  mtokens: string;
  fee_mtokens: string;
}

const MESSAGES: Record<PaymentFailureReason, string> = {
  NO_ROUTE: 'no route to the destination with enough capacity within the fee limit',
  INSUFFICIENT_BALANCE: 'not enough outbound liquidity to make the payment',
  INCORRECT_PAYMENT_DETAILS: 'the destination rejected the payment (unknown hash, wrong amount or expired)',
  PATHFINDING_TIMEOUT: 'LND gave up searching for a route',
  INVOICE_EXPIRED: 'the invoice has expired',
  CANCELED: 'the payment was canceled',
  FAILED: 'the payment failed',
};

export function failureReason(raw: RawFailure): PaymentFailureReason {
  if (raw.is_route_not_found) return 'NO_ROUTE';
  if (raw.is_insufficient_balance) return 'INSUFFICIENT_BALANCE';
  if (raw.is_invalid_payment) return 'INCORRECT_PAYMENT_DETAILS';
  if (raw.is_pathfinding_timeout) return 'PATHFINDING_TIMEOUT';
  if (raw.is_canceled) return 'CANCELED';
  return 'FAILED';
}

export function failed(
  paymentHash: Hex,
  reason: PaymentFailureReason,
  message = MESSAGES[reason],
): PaymentOutcome {
  return { status: 'failed', paymentHash, reason, message };
}

export function succeeded(paymentHash: Hex, raw: RawConfirmed): PaymentOutcome {
  const total = msat(raw.mtokens);
  const fee = msat(raw.fee_mtokens);
  // ln-service reports mtokens including fees; the amount delivered is the difference.
  return {
    status: 'succeeded',
    paymentHash,
    preimage: raw.secret,
    amountMsat: msat(total - fee),
    feeMsat: fee,
  };
}

/**
 * Errors LND raises before a payment starts. Only the ones that prove no HTLC left for this
 * attempt count as failures; anything else (a dropped connection, "already paid", "in
 * transition") leaves the outcome to tracking.
 */
export function classifyPayError(paymentHash: Hex, err: unknown): PaymentOutcome {
  const text = Array.isArray(err) ? `${String(err[1])} ${detailsOf(err[2])}` : detailsOf(err);
  if (/invoice expired|invoice is expired/i.test(text)) return failed(paymentHash, 'INVOICE_EXPIRED');
  if (/self-payments not allowed|self payment/i.test(text))
    return failed(paymentHash, 'NO_ROUTE', 'cannot pay our own node');
  if (
    /amount must be specified|amount must not be specified|invalid payment request|checksum failed|invalid bech32|not for current active network/i.test(
      text,
    )
  ) {
    return failed(paymentHash, 'INCORRECT_PAYMENT_DETAILS', text.trim());
  }
  if (/insufficient local balance|insufficient balance/i.test(text))
    return failed(paymentHash, 'INSUFFICIENT_BALANCE');
  return { status: 'pending', paymentHash };
}
