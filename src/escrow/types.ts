import type { Msat } from '../domain/msat.js';

/** What must happen before the payee gets the money. */
export type EscrowCondition =
  /** The payer (or the operator) approves the release. */
  | { type: 'approval' }
  /** The payee reveals the preimage of `paymentHash` (the hold invoice is for the payee's hash). */
  | { type: 'preimage'; paymentHash: string }
  /** The payee presents a delivery receipt signed by one of its registered receipt keys. */
  | { type: 'receipt' }
  /** An external verifier answers `{"release": true|false}` within `timeoutMs`. */
  | { type: 'webhook'; url: string; timeoutMs: number };

/**
 * open → funded → released | refunded; open → expired. `releasing` and `refunding` are the
 * persisted intent while LND settles or cancels the hold invoice: a restart finishes them.
 */
export type EscrowState = 'open' | 'funded' | 'releasing' | 'released' | 'refunding' | 'refunded' | 'expired';

export type EscrowFunding = 'lightning' | 'account';

export interface Escrow {
  id: string;
  /** The account that funds (account funding) or that owns the escrow (Lightning funding). */
  payerAccountId: string;
  /** Who gets the money; tasks name it when an agent claims them. */
  payeeAccountId?: string;
  amountMsat: Msat;
  description: string;
  condition: EscrowCondition;
  funding: EscrowFunding;
  state: EscrowState;
  paymentHash: string;
  /** Held by the gateway (never shown) unless the payee holds it (preimage condition). */
  preimage?: string;
  /** The hold invoice the payer pays from outside. */
  request?: string;
  /** Final CLTV delta of the hold invoice. */
  cltvDelta: number;
  /** The earliest timeout height among the accepted HTLCs. */
  htlcExpiryHeight?: number;
  /** Wall-clock deadline: unfunded escrows expire, funded ones are refunded. */
  deadline: number;
  /** The pending ledger transfer payer → escrow (account funding). */
  lockTransferId?: string;
  /** Pay the released amount out to this invoice from the payee's account. */
  payoutRequest?: string;
  payoutPaymentId?: string;
  /** Why it ended the way it did (approved, receipt, deadline, cltv_safety, dispute...). */
  reason?: string;
  verifierError?: string;
  createdAt: number;
  updatedAt: number;
  fundedAt?: number;
  resolvedAt?: number;
}

export interface CreateEscrowInput {
  payeeAccountId?: string;
  amountMsat: Msat;
  description?: string;
  condition: EscrowCondition;
  /** Default: Lightning (a hold invoice); `account` locks the payer's balance at once. */
  funding?: EscrowFunding;
  /** Seconds from now until the deadline. */
  timeoutSeconds?: number;
  cltvDelta?: number;
  payoutRequest?: string;
  /** A retry with the same key gets the first escrow; the same key for another request is a 409. */
  idempotencyKey?: string;
}

/** Who acts on an escrow: an account (through its key) or the operator. */
export type Actor = { type: 'account'; accountId: string } | { type: 'operator' };

export interface Receipt {
  /** What was delivered, as the payee's device describes it (at most 1 KiB). */
  payload: string;
  /** BIP340 Schnorr signature (64 bytes hex) over receiptDigest(escrow, payload). */
  signature: string;
}
