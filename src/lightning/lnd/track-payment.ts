import { getPayment, subscribeToPastPayment } from 'ln-service';
import type { GetPaymentResult } from 'lightning';
import type { TrackOptions } from '../backend.js';
import { LightningErrorCode } from '../errors.js';
import type { Hex, PaymentOutcome } from '../types.js';
import { awaitPayment } from './await-payment.js';
import type { LndContext } from './context.js';
import { assertHash } from './lookup-invoice.js';
import { toLightningError } from './map-error.js';
import { failed, failureReason, succeeded } from './payment-outcome.js';
import { withTimeout } from './with-timeout.js';

/** getPayment waits for the next update of a payment that is still starting: never wait long. */
const LOOKUP_TIMEOUT_MS = 5_000;

/** One look at what LND knows about a payment we sent. */
export async function getPaymentStatus({ lnd }: LndContext, paymentHash: Hex): Promise<PaymentOutcome> {
  assertHash(paymentHash);
  try {
    const res = await withTimeout(
      getPayment({ lnd, id: paymentHash }),
      LOOKUP_TIMEOUT_MS,
      (): GetPaymentResult => ({ is_pending: true }) as GetPaymentResult,
    );
    if (res.is_confirmed && res.payment) return succeeded(paymentHash, res.payment);
    if (res.is_failed) return failed(paymentHash, failureReason(res.failed ?? {}));
    return { status: 'pending', paymentHash };
  } catch (err) {
    const e = toLightningError(err, 'getPayment');
    if (e.code === LightningErrorCode.NOT_FOUND) return { status: 'not_found', paymentHash };
    throw e;
  }
}

/** Follows a payment until it is final or the timeout passes; never turns "unknown" into "failed". */
export async function trackPayment(
  ctx: LndContext,
  paymentHash: Hex,
  options: TrackOptions = {},
): Promise<PaymentOutcome> {
  const now = await getPaymentStatus(ctx, paymentHash);
  if (now.status !== 'pending' || options.timeoutMs === 0) return now;
  const sub = subscribeToPastPayment({ lnd: ctx.lnd, id: paymentHash });
  const outcome = await awaitPayment(sub, paymentHash, options.timeoutMs);
  // The stream may have attached after the payment finished: look once more before saying pending.
  return outcome.status === 'pending' ? getPaymentStatus(ctx, paymentHash) : outcome;
}
