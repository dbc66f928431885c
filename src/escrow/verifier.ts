import { EscrowError, EscrowErrorCode } from './errors.js';

export interface VerifierRequest {
  escrowId: string;
  paymentHash: string;
  amountMsat: string;
  payeeAccountId: string;
  evidence: unknown;
}

/**
 * Asks an external verifier whether to release. It must answer 2xx with `{"release": true}` or
 * `{"release": false}` within the timeout; anything else is an error and decides nothing.
 */
export async function askVerifier(url: string, timeoutMs: number, body: VerifierRequest): Promise<boolean> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    throw new EscrowError(
      EscrowErrorCode.VERIFIER_FAILED,
      timedOut ? `the verifier did not answer within ${timeoutMs} ms` : 'the verifier could not be reached',
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new EscrowError(EscrowErrorCode.VERIFIER_FAILED, `the verifier answered ${res.status}`);
  }
  const answer = (await res.json().catch(() => undefined)) as { release?: unknown } | undefined;
  if (typeof answer?.release !== 'boolean')
    throw new EscrowError(EscrowErrorCode.VERIFIER_FAILED, 'the verifier answer has no boolean "release"');
  return answer.release;
}
