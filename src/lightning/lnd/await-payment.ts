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
 * Waits on an ln-service payment subscription for a final outcome. When the timeout passes first,
 * resolves `pending`: LND keeps the payment going and trackPayment finds out how it ended. (For
 * sends, ln-service keeps the gRPC call open until LND finishes; for subscribeToPastPayment,
 * removing our listeners cancels the stream. Neither cancels a payment.) A failure read from an
 * error, not from LND's final FAILED status, is only believed after `confirmFailure` checked
 * that no earlier attempt for the hash is in flight or done.
 */
export async function awaitPayment(
  sub: EventEmitter,
  paymentHash: Hex,
  timeoutMs = DEFAULT_PAY_TIMEOUT_MS,
  confirmFailure: (outcome: PaymentOutcome) => Promise<PaymentOutcome> = async (o) => o,
): Promise<PaymentOutcome> {
  let fromError = false;
  const outcome = await new Promise<PaymentOutcome>((resolve) => {
    let done = false;
    const finish = (o: PaymentOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.removeAllListeners();
      // A late error after we stopped listening must not crash the process.
      sub.on('error', () => undefined);
      resolve(o);
    };
    const timer = setTimeout(() => finish({ status: 'pending', paymentHash }), timeoutMs);
    sub.on('confirmed', (raw: RawConfirmed) => finish(succeeded(paymentHash, raw)));
    sub.on('failed', (raw: RawFailure) => finish(failed(paymentHash, failureReason(raw))));
    sub.on('error', (err: unknown) => {
      fromError = true;
      finish(classifyPayError(paymentHash, err));
    });
  });
  return fromError && outcome.status === 'failed' ? confirmFailure(outcome) : outcome;
}
