import { AppError } from '../domain/errors.js';
import type { Decision, DenialCode } from './types.js';

const STATUS: Record<DenialCode, number> = {
  ACCOUNT_FROZEN: 403,
  NO_POLICY: 403,
  SPENDING_DISABLED: 403,
  PAYMENT_CAP_EXCEEDED: 403,
  QUOTA_EXCEEDED: 403,
  BALANCE_SHARE_EXCEEDED: 403,
  RESERVE_REQUIRED: 403,
  PAYEE_RESTRICTED: 403,
  TOO_MANY_IN_FLIGHT: 429,
  RATE_LIMITED: 429,
  // As an error (paths without an approval flow): refused. Payments answer 202 with an approval instead.
  NEEDS_APPROVAL: 403,
};

/** A spend the policy refused. `retryable` tells an agent whether waiting can help. */
export class PolicyDeniedError extends AppError {
  constructor(readonly decision: Decision & { code: DenialCode }) {
    super(decision.code, decision.reason ?? decision.code, STATUS[decision.code], {
      retryable: decision.retryAfterMs !== undefined,
      ...(decision.retryAfterMs !== undefined ? { retryAfterMs: decision.retryAfterMs } : {}),
      rules: decision.evaluated,
    });
  }
}
