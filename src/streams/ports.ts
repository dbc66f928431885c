import type { Logger } from '../domain/logger.js';
import type { KeysendInput } from '../payments/service.js';
import type { Payment } from '../payments/types.js';
import type { SpendRequest } from '../policy/types.js';

export type { Logger };

/** What streams need of the payments service (PaymentsService satisfies it). */
export interface StreamPayments {
  /** Evaluates and audits the payer's policy; throws PolicyDeniedError. Reserve in the same tick. */
  authorizeSpend(accountId: string, req: SpendRequest): void;
  /**
   * Makes the accounts and their policies resident for a synchronous `authorizeSpend` + reserve:
   * the payers (on a store several instances share, their leases are taken) and the others.
   */
  prepare(payers: readonly string[], others?: readonly string[]): Promise<void>;
  keysend(accountId: string, input: KeysendInput): Promise<Payment>;
  getPayment(id: string): Payment | undefined;
  readonly nodeId: string;
}
