import type {
  Balances,
  ConnectionState,
  CreateHoldInvoiceArgs,
  CreateInvoiceArgs,
  DecodedInvoice,
  Hex,
  Invoice,
  InvoiceCursorStore,
  KeysendArgs,
  NodeInfo,
  PayInvoiceArgs,
  PaymentOutcome,
  Subscription,
} from './types.js';

/** Optional features a backend may lack; callers check before relying on them. */
export interface Capabilities {
  holdInvoices: boolean;
  keysend: boolean;
  /** Receiving keysend payments (LND needs --accept-keysend). */
  receiveKeysend: boolean;
  customRecords: boolean;
  invoiceCatchUp: boolean;
}

export interface InvoiceSubscriptionOptions {
  /** Persisted add/settle indexes: the subscription replays everything after them, then goes live. */
  cursor: InvoiceCursorStore;
  /**
   * Called once per update, one at a time, in LND's order. The cursor advances only after the
   * handler resolves, so delivery is at-least-once across restarts: handlers must be idempotent.
   */
  onInvoice: (invoice: Invoice) => Promise<void>;
  onError?: (err: Error) => void;
}

export interface TrackOptions {
  /** Wait at most this long for a final outcome, else return what is known (`pending`). */
  timeoutMs?: number;
}

/** The boundary between Coulomb and a Lightning node. Amounts are msat bigints. */
export interface LightningBackend {
  readonly capabilities: Capabilities;

  getNodeInfo(): Promise<NodeInfo>;
  getBalances(): Promise<Balances>;

  createInvoice(args: CreateInvoiceArgs): Promise<Invoice>;
  decodeInvoice(request: string): Promise<DecodedInvoice>;
  lookupInvoice(paymentHash: Hex): Promise<Invoice>;
  subscribeInvoices(options: InvoiceSubscriptionOptions): Subscription;

  payInvoice(args: PayInvoiceArgs): Promise<PaymentOutcome>;
  keysend(args: KeysendArgs): Promise<PaymentOutcome>;
  /** Follows a payment we sent until LND says it is final, or the timeout passes. */
  trackPayment(paymentHash: Hex, options?: TrackOptions): Promise<PaymentOutcome>;

  createHoldInvoice(args: CreateHoldInvoiceArgs): Promise<Invoice>;
  settleHoldInvoice(preimage: Hex): Promise<void>;
  cancelHoldInvoice(paymentHash: Hex): Promise<void>;
  /** Streams every state change of one invoice (accepted, settled, canceled). */
  watchInvoice(
    paymentHash: Hex,
    onUpdate: (invoice: Invoice) => void,
    onError?: (err: Error) => void,
  ): Subscription;

  readonly connectionState: ConnectionState;
  onConnectionChange(listener: (state: ConnectionState) => void): () => void;
  close(): Promise<void>;
}
