import { CodedError } from '../domain/errors.js';

export const EscrowErrorCode = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  ESCROW_NOT_FOUND: 'ESCROW_NOT_FOUND',
  INVALID_STATE: 'ESCROW_INVALID_STATE',
  FORBIDDEN: 'ESCROW_FORBIDDEN',
  CONDITION_MISMATCH: 'CONDITION_MISMATCH',
  INVALID_PROOF: 'INVALID_PROOF',
  VERIFIER_FAILED: 'VERIFIER_FAILED',
  NO_PAYEE: 'NO_PAYEE',
  DEADLINE_TOO_FAR: 'DEADLINE_TOO_FAR',
} as const;
export type EscrowErrorCode = (typeof EscrowErrorCode)[keyof typeof EscrowErrorCode];

const STATUS: Record<EscrowErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  ESCROW_NOT_FOUND: 404,
  ESCROW_INVALID_STATE: 409,
  ESCROW_FORBIDDEN: 403,
  CONDITION_MISMATCH: 409,
  INVALID_PROOF: 422,
  VERIFIER_FAILED: 424,
  NO_PAYEE: 409,
  DEADLINE_TOO_FAR: 400,
};

export class EscrowError extends CodedError<EscrowErrorCode> {
  constructor(code: EscrowErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
