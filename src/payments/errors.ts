import { AppError } from '../domain/errors.js';

export const PaymentErrorCode = {
  INVALID_INVOICE: 'INVALID_INVOICE',
  INVOICE_EXPIRED: 'INVOICE_EXPIRED',
  NETWORK_MISMATCH: 'NETWORK_MISMATCH',
  AMOUNT_REQUIRED: 'AMOUNT_REQUIRED',
  AMOUNT_MISMATCH: 'AMOUNT_MISMATCH',
  ALREADY_PAID: 'ALREADY_PAID',
  PAYMENT_IN_PROGRESS: 'PAYMENT_IN_PROGRESS',
  OWN_INVOICE: 'OWN_INVOICE',
  PAYMENT_NOT_FOUND: 'PAYMENT_NOT_FOUND',
  INVOICE_NOT_FOUND: 'INVOICE_NOT_FOUND',
  APPROVAL_NOT_FOUND: 'APPROVAL_NOT_FOUND',
  APPROVAL_NOT_PENDING: 'APPROVAL_NOT_PENDING',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
} as const;
export type PaymentErrorCode = (typeof PaymentErrorCode)[keyof typeof PaymentErrorCode];

const STATUS: Record<PaymentErrorCode, number> = {
  INVALID_INVOICE: 400,
  INVOICE_EXPIRED: 400,
  NETWORK_MISMATCH: 400,
  AMOUNT_REQUIRED: 400,
  AMOUNT_MISMATCH: 400,
  ALREADY_PAID: 409,
  PAYMENT_IN_PROGRESS: 409,
  OWN_INVOICE: 400,
  PAYMENT_NOT_FOUND: 404,
  INVOICE_NOT_FOUND: 404,
  APPROVAL_NOT_FOUND: 404,
  APPROVAL_NOT_PENDING: 409,
  INVALID_ARGUMENT: 400,
};

export class PaymentError extends AppError {
  constructor(
    override readonly code: PaymentErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, STATUS[code], details);
  }
}
