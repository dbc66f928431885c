import type { Msat } from '../domain/msat.js';

/** Hex strings: payment hashes and preimages are 64 lowercase hex chars, node ids 66. */
export type Hex = string;

export interface NodeInfo {
  pubkey: Hex;
  alias: string;
  version: string;
  network: string;
  blockHeight: number;
  syncedToChain: boolean;
  syncedToGraph: boolean;
  activeChannels: number;
  peers: number;
}

export interface Balances {
  /** Our side of open channels, spendable or not. */
  channelLocalMsat: Msat;
  /** Remote side of open channels: what we can receive. */
  channelRemoteMsat: Msat;
  /** Balance in channels still opening. */
  channelPendingMsat: Msat;
  onchainConfirmedMsat: Msat;
  onchainUnconfirmedMsat: Msat;
}

export type InvoiceState = 'open' | 'accepted' | 'settled' | 'canceled';

/** A custom TLV record carried by a payment (types >= 65536 for our own; keysend preimage is 5482373484). */
export interface TlvRecord {
  type: bigint;
  /** Raw value, hex encoded. */
  value: Hex;
}

export interface InvoiceHtlc {
  amountMsat: Msat;
  state: 'accepted' | 'settled' | 'canceled';
  records: TlvRecord[];
  /** Block height at which the HTLC times out (0 when unknown): a held HTLC must end before it. */
  expiryHeight: number;
}

export interface Invoice {
  paymentHash: Hex;
  /** Known for invoices whose preimage LND holds (not for hold invoices before settlement). */
  preimage?: Hex;
  request?: string;
  description: string;
  amountMsat: Msat;
  receivedMsat: Msat;
  state: InvoiceState;
  isKeysend: boolean;
  createdAt: Date;
  expiresAt: Date;
  settledAt?: Date;
  cltvDelta: number;
  /** LND add index: position of this invoice in the order of creation (0 when LND did not report it). */
  addIndex: number;
  /** LND settle index: position in the order of settlement; 0 until settled. */
  settleIndex: number;
  htlcs: InvoiceHtlc[];
}

export interface DecodedInvoice {
  paymentHash: Hex;
  destination: Hex;
  amountMsat: Msat;
  description: string;
  descriptionHash?: Hex;
  expiresAt: Date;
  isExpired: boolean;
  cltvDelta: number;
  network: string;
}

export interface CreateInvoiceArgs {
  amountMsat: Msat;
  description?: string;
  expirySeconds?: number;
}

export interface CreateHoldInvoiceArgs extends CreateInvoiceArgs {
  paymentHash: Hex;
  /** Final CLTV delta the payer must give the last hop. */
  cltvDelta?: number;
}

export interface PayInvoiceArgs {
  request: string;
  /** Required for invoices without an amount; must match the invoice amount otherwise. */
  amountMsat?: Msat;
  /** Upper bound on routing fees; the payment fails rather than pay more. */
  maxFeeMsat: Msat;
  /** How long to wait for a final outcome before returning `pending`; the payment goes on. */
  timeoutMs?: number;
  /** How long LND may search for routes before failing the payment. */
  pathfindingTimeoutMs?: number;
}

export interface KeysendArgs {
  destination: Hex;
  /** Our preimage (the payment hash is its sha256); random when absent. */
  preimage?: Hex;
  amountMsat: Msat;
  maxFeeMsat: Msat;
  records?: TlvRecord[];
  timeoutMs?: number;
  pathfindingTimeoutMs?: number;
}

export type PaymentFailureReason =
  | 'NO_ROUTE'
  | 'INSUFFICIENT_BALANCE'
  | 'INCORRECT_PAYMENT_DETAILS'
  | 'PATHFINDING_TIMEOUT'
  | 'INVOICE_EXPIRED'
  | 'CANCELED'
  | 'FAILED';

/**
 * What LND says about a payment. `pending` covers every case where the outcome is not final yet
 * or not known (timeout, dropped connection): funds must stay reserved until a later track says
 * `succeeded` or `failed`. `not_found` means LND has no record of a payment with this hash.
 */
export type PaymentOutcome =
  | { status: 'succeeded'; paymentHash: Hex; preimage: Hex; amountMsat: Msat; feeMsat: Msat }
  | { status: 'failed'; paymentHash: Hex; reason: PaymentFailureReason; message: string }
  | { status: 'pending'; paymentHash: Hex }
  | { status: 'not_found'; paymentHash: Hex };

export type FinalPaymentOutcome = Extract<PaymentOutcome, { status: 'succeeded' | 'failed' }>;

/** Where an invoice subscription resumes: invoices added after addIndex, settled after settleIndex. */
export interface InvoiceCursor {
  addIndex: number;
  settleIndex: number;
}

export interface InvoiceCursorStore {
  load(): Promise<InvoiceCursor>;
  save(cursor: InvoiceCursor): Promise<void>;
}

export interface Subscription {
  close(): void;
}

export type ConnectionState = 'connected' | 'disconnected';
