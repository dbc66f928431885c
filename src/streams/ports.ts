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
  /**
   * True when `authorizeSpend` + reserve for `payer` may run now without `prepare` (on a shared
   * store the payer's lease may have gone to another instance since it was taken).
   */
  spendReady(payer: string, others?: readonly string[]): boolean;
  keysend(accountId: string, input: KeysendInput): Promise<Payment>;
  getPayment(id: string): Payment | undefined;
  readonly nodeId: string;
}
