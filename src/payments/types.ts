import type { Msat } from '../domain/msat.js';
import type { PaymentFailureReason } from '../lightning/types.js';

export type PaymentStatus = Payment['status'];

/** What every payment has, whatever its kind and status. */
interface PaymentBase {
  id: string;
  accountId: string;
  paymentHash: string;
  destination: string;
  amountMsat: Msat;
  feeLimitMsat: Msat;
  /** The ledger transfer reserving amount + fee limit, posted with the actual total. */
  reservationId: string;
  /** The operator's approval this payment waited for, if a policy asked for one. */
  approvalId?: string;
  idempotencyKey?: string;
  /** When it was handed to LND (the not-found grace runs from here). */
  sentAt?: number;
  createdAt: number;
  updatedAt: number;
}

/** Fields a variant does not have, readable (as undefined) on the union without narrowing it. */
type Absent<K extends string> = { [P in K]?: undefined };

/** Not final: waiting for the operator, or handed to LND (or about to be) with funds reserved. */
export type LiveStatus = Absent<'feeMsat' | 'preimage' | 'failureReason'> &
  ({ status: 'pending' } | { status: 'awaiting_approval'; approvalId: string });

/** Final: nothing about the payment changes any more. */
export type FinalStatus =
  | ({ status: 'succeeded'; feeMsat: Msat; preimage?: string } & Absent<'failureReason'>)
  | ({ status: 'failed'; failureReason: PaymentFailureReason | 'NEVER_REACHED_LND' } & Absent<
      'feeMsat' | 'preimage'
    >)
  | ({ status: 'denied'; failureReason: 'APPROVAL_DENIED' } & Absent<'feeMsat' | 'preimage'>)
  | ({ status: 'expired'; failureReason: 'APPROVAL_EXPIRED' } & Absent<'feeMsat' | 'preimage'>);

export type Bolt11Payment = PaymentBase & {
  kind: 'bolt11';
  request: string;
  /** An earlier payment of this hash failed: LND may report that old failure for a while. */
  retriesFailedHash?: boolean;
} & Absent<'records' | 'keysendPreimage' | 'payeeAccountId'> &
  (LiveStatus | FinalStatus);

export type KeysendPayment = PaymentBase & {
  kind: 'keysend';
  /** Custom TLV records, hex values. */
  records?: { type: string; value: string }[];
} & Absent<'request' | 'retriesFailedHash' | 'payeeAccountId'> &
  (
    | (LiveStatus & {
        /** The preimage we chose, kept until the payment is final. */
        keysendPreimage: string;
      })
    | (FinalStatus & Absent<'keysendPreimage'>)
  );

/** A payment of another account's invoice of this gateway: settled by one ledger transfer. */
export type InternalPayment = PaymentBase & {
  kind: 'internal';
  request: string;
  /** The account whose invoice was paid. */
  payeeAccountId: string;
} & Absent<'records' | 'keysendPreimage' | 'retriesFailedHash'> &
  FinalStatus;

/** An outbound payment, by kind and status: the fields a kind or status has are always there. */
export type Payment = Bolt11Payment | KeysendPayment | InternalPayment;

/** A payment not final yet (the ones kept in memory and re-tracked at start). */
export type LivePayment = Payment & LiveStatus;

/** Every field any payment may have, for views that drop some of them. */
export type PaymentFields = PaymentBase & {
  kind: Payment['kind'];
  status: Payment['status'];
  request?: string;
  retriesFailedHash?: boolean;
  records?: { type: string; value: string }[];
  keysendPreimage?: string;
  payeeAccountId?: string;
  feeMsat?: Msat;
  preimage?: string;
  failureReason?: PaymentFailureReason | 'NEVER_REACHED_LND' | 'APPROVAL_DENIED' | 'APPROVAL_EXPIRED';
};

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
   * Settled internally: the gateway account that paid it (a credential's payer, for the proxy's
   * budget-aware routing). Not public.
   */
  payerAccountId?: string;
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
  type:
    | 'escrow'
    | 'task'
    | 'stream'
    | 'stream_lapsed'
    | 'stream_resumed'
    | 'energy_order'
    | 'energy_trade'
    | 'auction';
  [field: string]: unknown;
}
