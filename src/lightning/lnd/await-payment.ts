import type { EventEmitter } from 'node:events';
import type { Hex, PaymentOutcome } from '../types.js';
import {
  classifyPayError,
  failed,
  failureReason,
  succeeded,
  type RawConfirmed,
  type RawFailure,
} from './payment-outcome.js';

export const DEFAULT_PAY_TIMEOUT_MS = 60_000;

/**
 * Waits on an ln-service payment subscription for a final outcome. When the timeout passes or the
 * stream breaks first, resolves `pending`: LND keeps the payment going and trackPayment finds out
 * how it ended. Removing our listeners cancels only the stream, never the payment.
 */
export function awaitPayment(
  sub: EventEmitter,
  paymentHash: Hex,
  timeoutMs = DEFAULT_PAY_TIMEOUT_MS,
): Promise<PaymentOutcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: PaymentOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.removeAllListeners();
      // A late error after we stopped listening must not crash the process.
      sub.on('error', () => undefined);
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ status: 'pending', paymentHash }), timeoutMs);
    sub.on('confirmed', (raw: RawConfirmed) => finish(succeeded(paymentHash, raw)));
    sub.on('failed', (raw: RawFailure) => finish(failed(paymentHash, failureReason(raw))));
    sub.on('error', (err: unknown) => finish(classifyPayError(paymentHash, err)));
    sub.on('end', () => finish({ status: 'pending', paymentHash }));
  });
}
