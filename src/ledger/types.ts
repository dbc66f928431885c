import type { Msat } from '../domain/msat.js';

/** `credential`: the prepaid credit of one L402 credential. */
export type AccountKind = 'operator' | 'agent' | 'device' | 'service' | 'credential' | 'system';

export interface Account {
  id: string;
  kind: AccountKind;
  name: string;
  /** System accounts (the Lightning clearing account, the operator's equity) may go negative. */
  allowNegative: boolean;
  frozen: boolean;
  creditsPosted: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  debitsPending: bigint;
  createdAt: number;
}

export type TransferState = 'pending' | 'posted' | 'voided';

export interface Transfer {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  /** For a pending transfer, the amount reserved; once posted, the amount that moved. */
  amount: Msat;
  state: TransferState;
  /**
   * What the transfer is for, as the services write it: 'funding', 'transfer', 'invoice',
   * 'invoice_paid_twice', 'invoice_held', 'payment', 'internal_payment', 'escrow', 'escrow_release',
   * 'stream', 'stream_in', 'l402_requests', 'l402_usage', 'l402_refund'.
   */
  code: string;
  memo?: string;
  idempotencyKey?: string;
  /**
   * Of a pending transfer, the part already moved by `advance` (streams): posted to both accounts
   * while the rest stays reserved. Posting or voiding later settles the transfer at >= this amount.
   */
  advanced?: Msat;
  /**
   * Of a spending debit (code in SPEND_CODES): the time it was counted at in the debit account's
   * spend buckets, where a void or a lower post takes it out again.
   */
  spentAt?: number;
  /** Pending transfers with a timeout are voided by the ledger when it passes. */
  timeoutAt?: number;
  createdAt: number;
  resolvedAt?: number;
}

export interface TransferRequest {
  debitAccountId: string;
  creditAccountId: string;
  amount: Msat;
  code: string;
  memo?: string;
  /** A retry with the same key returns the first transfer, never a second one. */
  idempotencyKey?: string;
  /** Two-phase: reserve now, post or void later. */
  pending?: boolean;
  timeoutMs?: number;
  /** Explicit id (e.g. derived from a payment id); generated when absent. */
  id?: string;
}

export interface JournalEntry {
  seq: number;
  at: number;
  type:
    | 'account_created'
    | 'account_frozen'
    | 'account_unfrozen'
    | 'transfer_created'
    | 'transfer_posted'
    | 'transfer_voided';
  /** Accounts the entry touches (both sides of a transfer). */
  accountIds: string[];
  transferId?: string;
  amount?: string;
  detail?: string;
}

/** Balance views derived from an account. */
export function balanceOf(a: Account): bigint {
  return a.creditsPosted - a.debitsPosted;
}

/** What the account can still spend: posted balance less pending debits. Pending credits do not count. */
export function availableOf(a: Account): bigint {
  return a.creditsPosted - a.debitsPosted - a.debitsPending;
}

/**
 * The gateway's own accounts (system and operator): kept by the gateway itself, never credited by
 * a transfer, funding or stream, and never changed through the account routes.
 */
export function isGatewayAccount(id: string, kind: AccountKind | undefined): boolean {
  return id.startsWith('sys:') || kind === 'system' || kind === 'operator';
}
