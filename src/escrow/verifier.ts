import type { OutboundGuard } from '../net/outbound.js';

export interface VerifierRequest {
  escrowId: string;
  paymentHash: string;
  amountMsat: string;
  payeeAccountId: string;
  evidence: unknown;
}

/** The verifier's decision, or why there is none (for the gateway's log, never for the caller). */
export type VerifierAnswer = { ok: true; release: boolean } | { ok: false; reason: string };

/** What the caller learns when there is no decision: nothing about the target's reachability. */
export const VERIFIER_FAILED_MESSAGE = 'the verifier could not be reached or gave no valid answer';

/**
 * Asks an external verifier whether to release, through the outbound guard (public addresses
 * or the operator's allowlist, no redirects). It must answer 2xx with `{"release": true}` or
 * `{"release": false}` within the timeout; anything else decides nothing.
 */
export async function askVerifier(
  guard: OutboundGuard,
  url: string,
  timeoutMs: number,
  body: VerifierRequest,
): Promise<VerifierAnswer> {
  let answer: { status: number; body: unknown };
  try {
    answer = await guard.postJson(url, body, { timeoutMs });
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
  if (answer.status < 200 || answer.status >= 300)
    return { ok: false, reason: `the verifier answered ${answer.status}` };
  const release = (answer.body as { release?: unknown } | null)?.release;
  if (typeof release !== 'boolean') return { ok: false, reason: 'the answer has no boolean "release"' };
  return { ok: true, release };
}
