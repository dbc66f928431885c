import { CodedError } from '../domain/errors.js';

/** Stable codes for everything that goes wrong between us and the Lightning node. */
export const LightningErrorCode = {
  UNAVAILABLE: 'LN_UNAVAILABLE',
  PERMISSION_DENIED: 'LN_PERMISSION_DENIED',
  NOT_FOUND: 'LN_NOT_FOUND',
  INVOICE_NOT_FOUND: 'LN_INVOICE_NOT_FOUND',
  INVOICE_EXISTS: 'LN_INVOICE_EXISTS',
  INVOICE_AMOUNT_TOO_LARGE: 'LN_INVOICE_AMOUNT_TOO_LARGE',
  INVALID_REQUEST: 'LN_INVALID_REQUEST',
  INVALID_ARGUMENT: 'LN_INVALID_ARGUMENT',
  HOLD_NOT_ACCEPTED: 'LN_HOLD_INVOICE_NOT_ACCEPTED',
  HOLD_INVALID_STATE: 'LN_HOLD_INVOICE_INVALID_STATE',
  UNSUPPORTED: 'LN_UNSUPPORTED',
  INTERNAL: 'LN_INTERNAL',
} as const;
export type LightningErrorCode = (typeof LightningErrorCode)[keyof typeof LightningErrorCode];

const STATUS: Record<LightningErrorCode, number> = {
  LN_UNAVAILABLE: 503,
  LN_PERMISSION_DENIED: 502,
  LN_NOT_FOUND: 404,
  LN_INVOICE_NOT_FOUND: 404,
  LN_INVOICE_EXISTS: 409,
  LN_INVOICE_AMOUNT_TOO_LARGE: 400,
  LN_INVALID_REQUEST: 400,
  LN_INVALID_ARGUMENT: 400,
  LN_HOLD_INVOICE_NOT_ACCEPTED: 409,
  LN_HOLD_INVOICE_INVALID_STATE: 409,
  LN_UNSUPPORTED: 501,
  LN_INTERNAL: 502,
};

export class LightningError extends CodedError<LightningErrorCode> {
  constructor(code: LightningErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
