import { CodedError } from '../domain/errors.js';

/** Stable codes of the L402 operator API (docs/L402.md, "Revoking a credential"). */
export const L402ErrorCode = {
  INVALID_CREDENTIAL: 'INVALID_CREDENTIAL',
  CREDENTIAL_NOT_FOUND: 'CREDENTIAL_NOT_FOUND',
} as const;
export type L402ErrorCode = (typeof L402ErrorCode)[keyof typeof L402ErrorCode];

const STATUS: Record<L402ErrorCode, number> = {
  INVALID_CREDENTIAL: 400,
  CREDENTIAL_NOT_FOUND: 404,
};

export class L402Error extends CodedError<L402ErrorCode> {
  constructor(code: L402ErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
