import { CodedError } from '../domain/errors.js';

export const LedgerErrorCode = {
  ACCOUNT_NOT_FOUND: 'ACCOUNT_NOT_FOUND',
  ACCOUNT_EXISTS: 'ACCOUNT_EXISTS',
  INVALID_ACCOUNT_ID: 'INVALID_ACCOUNT_ID',
  ACCOUNT_FROZEN: 'ACCOUNT_FROZEN',
  INSUFFICIENT_FUNDS: 'INSUFFICIENT_FUNDS',
  BALANCE_LIMIT_EXCEEDED: 'BALANCE_LIMIT_EXCEEDED',
  SAME_ACCOUNT: 'SAME_ACCOUNT',
  AMOUNT_MUST_BE_POSITIVE: 'AMOUNT_MUST_BE_POSITIVE',
  TRANSFER_NOT_FOUND: 'TRANSFER_NOT_FOUND',
  TRANSFER_EXISTS: 'TRANSFER_EXISTS',
  TRANSFER_NOT_PENDING: 'TRANSFER_NOT_PENDING',
  POST_EXCEEDS_PENDING: 'POST_EXCEEDS_PENDING',
  POST_BELOW_ADVANCED: 'POST_BELOW_ADVANCED',
  IDEMPOTENCY_CONFLICT: 'IDEMPOTENCY_CONFLICT',
  INVALID_TIMEOUT: 'INVALID_TIMEOUT',
  STORAGE_FAILED: 'STORAGE_FAILED',
  /** Several instances: another one holds the account's lease and did not hand it over in time. */
  LEASE_BUSY: 'LEASE_BUSY',
  /** Several instances: a debit without this instance holding the account's lease (handed over). */
  LEASE_NOT_HELD: 'LEASE_NOT_HELD',
} as const;
export type LedgerErrorCode = (typeof LedgerErrorCode)[keyof typeof LedgerErrorCode];

const STATUS: Record<LedgerErrorCode, number> = {
  ACCOUNT_NOT_FOUND: 404,
  ACCOUNT_EXISTS: 409,
  INVALID_ACCOUNT_ID: 400,
  ACCOUNT_FROZEN: 403,
  INSUFFICIENT_FUNDS: 402,
  BALANCE_LIMIT_EXCEEDED: 409,
  SAME_ACCOUNT: 400,
  AMOUNT_MUST_BE_POSITIVE: 400,
  TRANSFER_NOT_FOUND: 404,
  TRANSFER_EXISTS: 409,
  TRANSFER_NOT_PENDING: 409,
  POST_EXCEEDS_PENDING: 400,
  POST_BELOW_ADVANCED: 409,
  IDEMPOTENCY_CONFLICT: 409,
  INVALID_TIMEOUT: 400,
  STORAGE_FAILED: 503,
  LEASE_BUSY: 503,
  LEASE_NOT_HELD: 503,
};

export class LedgerError extends CodedError<LedgerErrorCode> {
  constructor(code: LedgerErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
