import type { Msat } from '../domain/msat.js';
import type { PaymentFailureReason } from '../lightning/types.js';

export type PaymentStatus = 'awaiting_approval' | 'pending' | 'succeeded' | 'failed' | 'denied' | 'expired';

export interface Payment {
  id: string;
  accountId: string;
  kind: 'bolt11' | 'keysend' | 'internal';
  paymentHash: string;
  request?: string;
  destination: string;
  amountMsat: Msat;
  feeLimitMsat: Msat;
  feeMsat?: Msat;
  status: PaymentStatus;
  failureReason?: PaymentFailureReason | 'NEVER_REACHED_LND' | 'APPROVAL_DENIED' | 'APPROVAL_EXPIRED';
  /** The ledger transfer reserving amount + fee limit, posted with the actual total. */
  reservationId: string;
  preimage?: string;
  /** Custom TLV records (keysend), hex values. */
  records?: { type: string; value: string }[];
  /** Keysend: the preimage we chose, kept until the payment is final. */
  keysendPreimage?: string;
  /** Internal payments: the account whose invoice was paid. */
  payeeAccountId?: string;
  approvalId?: string;
  idempotencyKey?: string;
  /** When it was handed to LND (the not-found grace runs from here). */
  sentAt?: number;
  /** An earlier payment of this hash failed: LND may report that old failure for a while. */
  retriesFailedHash?: boolean;
  createdAt: number;
  updatedAt: number;
}

export type InvoiceRecordState = 'open' | 'settled' | 'canceled';

export interface InvoiceRecord {
  paymentHash: string;
  accountId: string;
  request: string;
  amountMsat: Msat;
  receivedMsat?: Msat;
  description: string;
  state: InvoiceRecordState;
  /** How it was paid: by another account of this gateway, or over Lightning. */
  settledVia?: 'internal' | 'lightning';
  /**
   * Settled internally and then paid over Lightning as well (an outside payment that beat the
   * cancel): what LND received, booked to the operator's account for a refund, not to the payee.
   */
  lightningReceivedMsat?: Msat;
  /**
   * Paid over Lightning, but the payee's balance would have exceeded the ledger's ceiling: what
   * LND received, booked to the operator's account instead, to be returned.
   */
  heldByOperatorMsat?: Msat;
  /** Settled internally, and LND confirmed its invoice can no longer be paid there. Not public. */
  closedInLnd?: boolean;
  /** Kept to prove internal payments to the payer; never logged. */
  preimage?: string;
  createdAt: number;
  expiresAt: number;
  settledAt?: number;
  /** An L402 credential's invoice: when the credential expires (unix ms; its revocation may go then). */
  credentialExpiresAt?: number;
}

export type ApprovalState = 'pending' | 'approved' | 'denied' | 'expired';

export interface Approval {
  id: string;
  paymentId: string;
  accountId: string;
  amountMsat: Msat;
  feeLimitMsat: Msat;
  reason: string;
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  decidedAt?: number;
  decidedBy?: string;
}

/** What the gateway pushes to an account's event stream. */
export type AccountEvent =
  | { type: 'payment'; payment: Payment }
  | { type: 'invoice'; invoice: Omit<InvoiceRecord, 'preimage'> }
  | { type: 'balance'; accountId: string; balanceMsat: string; availableMsat: string }
  | { type: 'approval'; approval: Approval }
  | { type: 'alert'; accountId: string; code: string; message: string }
  | FeatureEvent;

/** Events of the features built on payments (escrow, tasks, streams), published on the same bus. */
export interface FeatureEvent {
  type: 'escrow' | 'task' | 'stream' | 'stream_lapsed' | 'stream_resumed';
  [field: string]: unknown;
}
