import { CodedError } from '../domain/errors.js';

export const EnergyErrorCode = {
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  ORDER_NOT_FOUND: 'ENERGY_ORDER_NOT_FOUND',
  ORDER_CLOSED: 'ENERGY_ORDER_CLOSED',
  TRADE_NOT_FOUND: 'ENERGY_TRADE_NOT_FOUND',
  TRADE_CLOSED: 'ENERGY_TRADE_CLOSED',
  NOT_A_PARTY: 'ENERGY_NOT_A_PARTY',
  READING_CONFLICT: 'ENERGY_READING_CONFLICT',
  TOO_MANY_PENDING_READINGS: 'ENERGY_TOO_MANY_PENDING_READINGS',
  TOO_MANY_OPEN_ORDERS: 'ENERGY_TOO_MANY_OPEN_ORDERS',
  INSUFFICIENT_FUNDS: 'INSUFFICIENT_FUNDS',
} as const;
export type EnergyErrorCode = (typeof EnergyErrorCode)[keyof typeof EnergyErrorCode];

const STATUS: Record<EnergyErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  ENERGY_ORDER_NOT_FOUND: 404,
  ENERGY_ORDER_CLOSED: 409,
  ENERGY_TRADE_NOT_FOUND: 404,
  ENERGY_TRADE_CLOSED: 409,
  ENERGY_NOT_A_PARTY: 403,
  ENERGY_READING_CONFLICT: 409,
  ENERGY_TOO_MANY_PENDING_READINGS: 409,
  ENERGY_TOO_MANY_OPEN_ORDERS: 429,
  INSUFFICIENT_FUNDS: 402,
};

export class EnergyError extends CodedError<EnergyErrorCode> {
  constructor(code: EnergyErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}

export const invalid = (message: string): EnergyError =>
  new EnergyError(EnergyErrorCode.INVALID_ARGUMENT, message);
