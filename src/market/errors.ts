import { CodedError } from '../domain/errors.js';

export const MarketErrorCode = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  TASK_NOT_FOUND: 'TASK_NOT_FOUND',
  OFFER_NOT_FOUND: 'OFFER_NOT_FOUND',
  INVALID_STATE: 'TASK_INVALID_STATE',
  FORBIDDEN: 'TASK_FORBIDDEN',
  MISSING_CAPABILITY: 'MISSING_CAPABILITY',
  DEADLINE_PASSED: 'DEADLINE_PASSED',
  TOO_MANY_OPEN_AUCTIONS: 'TOO_MANY_OPEN_AUCTIONS',
} as const;
export type MarketErrorCode = (typeof MarketErrorCode)[keyof typeof MarketErrorCode];

const STATUS: Record<MarketErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  TASK_NOT_FOUND: 404,
  OFFER_NOT_FOUND: 404,
  TASK_INVALID_STATE: 409,
  TASK_FORBIDDEN: 403,
  MISSING_CAPABILITY: 403,
  DEADLINE_PASSED: 409,
  TOO_MANY_OPEN_AUCTIONS: 429,
};

export class MarketError extends CodedError<MarketErrorCode> {
  constructor(code: MarketErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}
