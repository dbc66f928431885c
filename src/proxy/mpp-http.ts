import type { ServerResponse } from 'node:http';
import type { Msat } from '../domain/msat.js';
import { PROBLEM_BASE, type MppProblem } from '../l402/mpp.js';
import type { CreditRefunds, RefundDestination, RefundResult } from '../l402/refund.js';

/** What the proxy needs to close credentials for their holders (docs/L402.md, docs/MPP.md). */
export interface ProxyRefunds {
  refunds: CreditRefunds;
  /** Closes an L402 credential authenticated by itself (see `closeL402Credential`). */
  closeL402(
    authorization: string | undefined,
    service: string,
    destination: RefundDestination,
    flushCharges: () => Promise<void>,
  ): Promise<RefundResult>;
  /** Routing fees the gateway may spend on an MPP session's refund. */
  sessionRefundMaxFeeMsat: Msat;
}

const TITLES: Record<string, string> = {
  'payment-required': 'Payment Required',
  'payment-insufficient': 'Payment Insufficient',
  'payment-expired': 'Payment Expired',
  'verification-failed': 'Verification Failed',
  'malformed-credential': 'Malformed Credential',
  'invalid-challenge': 'Invalid Challenge',
};

/** An RFC 9457 problem document for a payment failure (plus our stable `code`). */
export function problem(
  type: MppProblem,
  status: number,
  detail: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    type: PROBLEM_BASE + type,
    title: TITLES[type] ?? type.replace(/^lightning\//, '').replace(/-/g, ' '),
    status,
    detail,
    ...extra,
  };
}

export function sendProblem(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string | string[]> = {},
): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

/**
 * A session closed whose unused deposit could not be sent (no return invoice, or an unusable
 * one): the draft's `failed`; the deposit stays in the session's account for a later close.
 */
export function closeUnrefunded(leftMsat: bigint, code: string, message: string): Record<string, unknown> {
  return {
    status: 'closed',
    refundSats: 0,
    refundMsat: '0',
    refundStatus: leftMsat > 0n ? 'failed' : 'skipped',
    ...(leftMsat > 0n ? { unrefundedMsat: leftMsat.toString(), error: { code, message } } : {}),
  };
}

/** The answer to an MPP session close (the draft's shape, with msat figures beside the sats). */
export function closeAnswer(result: RefundResult | undefined): Record<string, unknown> {
  const refund = result?.refundMsat ?? 0n;
  const status = result?.status ?? 'skipped';
  return {
    status: 'closed',
    refundSats: Number(refund / 1000n),
    refundMsat: refund.toString(),
    // The draft knows succeeded | failed | skipped only: a payment whose outcome is not known yet
    // reads `failed` with `refundPending: true` (closing again reads the outcome once known).
    refundStatus: status === 'pending' ? 'failed' : status,
    ...(status === 'pending' ? { refundPending: true } : {}),
    ...(result?.paymentId ? { paymentId: result.paymentId } : {}),
    ...(result?.unusedFeeReserveMsat !== undefined
      ? { unusedFeeReserveMsat: result.unusedFeeReserveMsat.toString() }
      : {}),
  };
}
