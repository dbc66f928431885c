import { AppError } from '../domain/errors.js';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import { PolicyDeniedError } from '../policy/errors.js';
import type { StopReason } from './types.js';

/** Why the engine wants a stream stopped. */
export interface StopSignal {
  reason: StopReason;
  code?: string;
  message?: string;
}

/** True for errors after which the ledger accepts no more changes: stop everything, not a stream. */
export function isFatal(err: unknown): boolean {
  return err instanceof LedgerError && err.code === LedgerErrorCode.STORAGE_FAILED;
}

/** A policy denial that waiting can cure (rate limits, too many in flight). */
export function isRetryableDenial(err: unknown): boolean {
  return err instanceof PolicyDeniedError && err.decision.retryAfterMs !== undefined;
}

/** Maps an error refusing a chunk or a payment to the stream's stop reason. Rethrows fatal ones. */
export function stopSignalOf(err: unknown): StopSignal {
  if (isFatal(err)) throw err;
  if (err instanceof PolicyDeniedError)
    return { reason: 'policy_denied', code: err.code, message: err.message };
  if (err instanceof LedgerError && err.code === LedgerErrorCode.INSUFFICIENT_FUNDS)
    return { reason: 'funds_exhausted', code: err.code, message: err.message };
  if (err instanceof LedgerError && err.code === LedgerErrorCode.ACCOUNT_FROZEN)
    return { reason: 'policy_denied', code: err.code, message: err.message };
  if (err instanceof AppError) return { reason: 'payment_failed', code: err.code, message: err.message };
  return { reason: 'payment_failed', code: 'INTERNAL', message: (err as Error)?.message ?? String(err) };
}
