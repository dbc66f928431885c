import type { AuthenticatedLnd } from 'lightning';
import type { Capabilities, InvoiceSubscriptionOptions, LightningBackend, TrackOptions } from '../backend.js';
import type {
  Balances,
  ConnectionState,
  CreateHoldInvoiceArgs,
  CreateInvoiceArgs,
  DecodedInvoice,
  Hex,
  Invoice,
  KeysendArgs,
  NodeInfo,
  PayInvoiceArgs,
  PaymentOutcome,
  Subscription,
} from '../types.js';
import { cancelHoldInvoice } from './cancel-hold-invoice.js';
import { connectLnd, type LndCredentials } from './connect.js';
import type { LndContext } from './context.js';
import { createHoldInvoice } from './create-hold-invoice.js';
import { createInvoice } from './create-invoice.js';
import { decodeInvoice } from './decode-invoice.js';
import { getBalances } from './get-balances.js';
import { getNodeInfo } from './get-node-info.js';
import { HealthMonitor, type HealthMonitorOptions } from './health.js';
import { keysend } from './keysend.js';
import { lookupInvoice } from './lookup-invoice.js';
import { payInvoice } from './pay-invoice.js';
import { settleHoldInvoice } from './settle-hold-invoice.js';
import { subscribeInvoices } from './subscribe-invoices.js';
import { trackPayment } from './track-payment.js';
import { watchInvoice } from './watch-invoice.js';
import type { ResilientSubscription } from './resilient-stream.js';

export const LND_CAPABILITIES: Capabilities = {
  holdInvoices: true,
  keysend: true,
  receiveKeysend: true,
  customRecords: true,
  invoiceCatchUp: true,
};

/** LightningBackend over ln-service. Each operation lives in its own module; this class only routes. */
export class LndBackend implements LightningBackend {
  readonly capabilities = LND_CAPABILITIES;
  private readonly ctx: LndContext;
  private readonly health: HealthMonitor;
  private readonly subscriptions = new Set<ResilientSubscription>();

  constructor(lnd: AuthenticatedLnd, health: HealthMonitorOptions = {}) {
    this.ctx = { lnd };
    this.health = new HealthMonitor(this.ctx, health);
    // A stream on a half-open connection may never error: reopen them all when LND is back.
    this.health.onChange((state) => {
      if (state === 'connected') for (const s of this.subscriptions) s.reconnect();
    });
    this.health.start();
  }

  static async connect(creds: LndCredentials, health?: HealthMonitorOptions): Promise<LndBackend> {
    return new LndBackend(await connectLnd(creds), health);
  }

  /** The raw ln-service handle, for the composition root and benchmarks only. */
  get lnd(): AuthenticatedLnd {
    return this.ctx.lnd;
  }

  get connectionState(): ConnectionState {
    return this.health.current;
  }

  onConnectionChange(listener: (state: ConnectionState) => void): () => void {
    return this.health.onChange(listener);
  }

  /** Probes now instead of waiting for the next interval. */
  checkConnection(): Promise<ConnectionState> {
    return this.health.probe();
  }

  getNodeInfo(): Promise<NodeInfo> {
    return getNodeInfo(this.ctx);
  }
  getBalances(): Promise<Balances> {
    return getBalances(this.ctx);
  }
  createInvoice(args: CreateInvoiceArgs): Promise<Invoice> {
    return createInvoice(this.ctx, args);
  }
  async decodeInvoice(request: string): Promise<DecodedInvoice> {
    return decodeInvoice(request);
  }
  lookupInvoice(paymentHash: Hex): Promise<Invoice> {
    return lookupInvoice(this.ctx, paymentHash);
  }
  subscribeInvoices(options: InvoiceSubscriptionOptions): Subscription {
    return this.track(subscribeInvoices(this.ctx, options));
  }
  payInvoice(args: PayInvoiceArgs): Promise<PaymentOutcome> {
    return payInvoice(this.ctx, args);
  }
  keysend(args: KeysendArgs): Promise<PaymentOutcome> {
    return keysend(this.ctx, args);
  }
  trackPayment(paymentHash: Hex, options?: TrackOptions): Promise<PaymentOutcome> {
    return trackPayment(this.ctx, paymentHash, options);
  }
  createHoldInvoice(args: CreateHoldInvoiceArgs): Promise<Invoice> {
    return createHoldInvoice(this.ctx, args);
  }
  settleHoldInvoice(preimage: Hex): Promise<void> {
    return settleHoldInvoice(this.ctx, preimage);
  }
  cancelHoldInvoice(paymentHash: Hex): Promise<void> {
    return cancelHoldInvoice(this.ctx, paymentHash);
  }
  watchInvoice(
    paymentHash: Hex,
    onUpdate: (invoice: Invoice) => void,
    onError?: (err: Error) => void,
  ): Subscription {
    return this.track(watchInvoice(this.ctx, paymentHash, onUpdate, onError));
  }

  async close(): Promise<void> {
    this.health.stop();
    for (const s of this.subscriptions) s.close();
    this.subscriptions.clear();
  }

  private track(sub: ResilientSubscription): Subscription {
    this.subscriptions.add(sub);
    return {
      close: () => {
        sub.close();
        this.subscriptions.delete(sub);
      },
    };
  }
}
