import { createHash, randomBytes } from 'node:crypto';
import { msat, type Msat } from '../../src/domain/msat.js';
import { LightningError } from '../../src/lightning/errors.js';
import type {
  Capabilities,
  InvoiceSubscriptionOptions,
  LightningBackend,
} from '../../src/lightning/backend.js';
import type { ConnectionState } from '../../src/lightning/types.js';
import type {
  DecodedInvoice,
  Invoice,
  KeysendArgs,
  PayInvoiceArgs,
  PaymentOutcome,
} from '../../src/lightning/types.js';

const sha = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex');
export const FAKE_NODE = '02' + '11'.repeat(32);
export const REMOTE_NODE = '03' + '22'.repeat(32);

/** Builds a request string the fake decodes (a stand-in for BOLT11 in unit tests). */
export function fakeRequest(fields: {
  hash?: string;
  amountMsat: bigint;
  destination?: string;
  expiresAt?: number;
}): { request: string; hash: string; preimage: string } {
  const preimage = randomBytes(32).toString('hex');
  const hash = fields.hash ?? sha(preimage);
  const body = {
    hash,
    amount: fields.amountMsat.toString(),
    destination: fields.destination ?? REMOTE_NODE,
    expiresAt: fields.expiresAt ?? Date.now() + 3600_000,
  };
  return { request: `lnbcrtfake${Buffer.from(JSON.stringify(body)).toString('base64url')}`, hash, preimage };
}

type Behaviour = (hash: string, amount: Msat, maxFee: Msat) => Promise<PaymentOutcome> | PaymentOutcome;

/** In-memory Lightning for unit tests only: outcomes are scripted, LND's records kept in maps. */
export class FakeLightning implements LightningBackend {
  readonly capabilities: Capabilities = {
    holdInvoices: true,
    keysend: true,
    receiveKeysend: true,
    customRecords: true,
    invoiceCatchUp: true,
  };
  /** Tests may take the node away. */
  connectionState: ConnectionState = 'connected';
  /** What LND says about each payment hash it was asked to pay. */
  readonly sent = new Map<string, PaymentOutcome>();
  readonly invoices = new Map<string, Invoice>();
  payCalls = 0;
  canceled: string[] = [];
  behaviour: Behaviour = (hash, amount) => ({
    status: 'succeeded',
    paymentHash: hash,
    preimage: '00'.repeat(32),
    amountMsat: amount,
    feeMsat: msat(1000),
  });

  onConnectionChange(): () => void {
    return () => undefined;
  }
  async getNodeInfo() {
    return {
      pubkey: FAKE_NODE,
      alias: 'fake',
      version: 'x',
      network: 'regtest',
      blockHeight: 1,
      syncedToChain: true,
      syncedToGraph: true,
      activeChannels: 1,
      peers: 1,
    };
  }
  async getBalances() {
    return {
      channelLocalMsat: msat(10n ** 12n),
      channelRemoteMsat: msat(0),
      channelPendingMsat: msat(0),
      onchainConfirmedMsat: msat(0),
      onchainUnconfirmedMsat: msat(0),
    };
  }
  async createInvoice(args: { amountMsat: Msat; description?: string }): Promise<Invoice> {
    const { request, hash, preimage } = fakeRequest({ amountMsat: args.amountMsat, destination: FAKE_NODE });
    const inv: Invoice = {
      paymentHash: hash,
      preimage,
      request,
      description: args.description ?? '',
      amountMsat: args.amountMsat,
      receivedMsat: msat(0),
      state: 'open',
      isKeysend: false,
      createdAt: new Date(),
      expiresAt: new Date(Date.now() + 3600_000),
      cltvDelta: 80,
      addIndex: this.invoices.size + 1,
      settleIndex: 0,
      htlcs: [],
    };
    this.invoices.set(hash, inv);
    return { ...inv };
  }
  async decodeInvoice(request: string): Promise<DecodedInvoice> {
    if (!request.startsWith('lnbcrtfake')) throw new LightningError('LN_INVALID_REQUEST', 'not a request');
    const b = JSON.parse(Buffer.from(request.slice(10), 'base64url').toString()) as {
      hash: string;
      amount: string;
      destination: string;
      expiresAt: number;
    };
    return {
      paymentHash: b.hash,
      destination: b.destination,
      amountMsat: msat(b.amount),
      description: '',
      expiresAt: new Date(b.expiresAt),
      isExpired: b.expiresAt < Date.now(),
      cltvDelta: 40,
      network: 'regtest',
    };
  }
  async lookupInvoice(hash: string): Promise<Invoice> {
    const inv = this.invoices.get(hash);
    if (!inv) throw new LightningError('LN_INVOICE_NOT_FOUND', 'no invoice');
    return { ...inv };
  }
  /** Marks one of "our node's" invoices paid from outside, as LND would report it. */
  settle(hash: string): Invoice {
    const inv = this.invoices.get(hash)!;
    inv.state = 'settled';
    inv.receivedMsat = inv.amountMsat;
    inv.settleIndex = [...this.invoices.values()].filter((i) => i.settleIndex > 0).length + 1;
    return { ...inv };
  }
  subscribeInvoices(_options: InvoiceSubscriptionOptions): { close(): void } {
    return { close: () => undefined };
  }
  async payInvoice(args: PayInvoiceArgs): Promise<PaymentOutcome> {
    this.payCalls += 1;
    const d = await this.decodeInvoice(args.request);
    return this.run(d.paymentHash, args.amountMsat ?? d.amountMsat, args.maxFeeMsat);
  }
  async keysend(args: KeysendArgs): Promise<PaymentOutcome> {
    this.payCalls += 1;
    return this.run(sha(args.preimage!), args.amountMsat, args.maxFeeMsat);
  }
  private async run(hash: string, amount: Msat, maxFee: Msat): Promise<PaymentOutcome> {
    this.sent.set(hash, { status: 'pending', paymentHash: hash });
    const outcome = await this.behaviour(hash, amount, maxFee);
    if (outcome.status !== 'pending') this.sent.set(hash, outcome);
    return outcome;
  }
  /** Finishes a payment that was left pending, as LND eventually would. */
  resolve(outcome: PaymentOutcome): void {
    this.sent.set(outcome.paymentHash, outcome);
  }
  async trackPayment(hash: string): Promise<PaymentOutcome> {
    return this.sent.get(hash) ?? { status: 'not_found', paymentHash: hash };
  }
  createHoldInvoice(): never {
    throw new Error('not used');
  }
  async settleHoldInvoice(): Promise<void> {}
  /** Makes every cancel fail with this error (LND unreachable, say) while set. */
  cancelFailure: Error | undefined;
  /** As LND: a settled invoice cannot be canceled; an open one becomes canceled. */
  async cancelHoldInvoice(hash: string): Promise<void> {
    if (this.cancelFailure) throw this.cancelFailure;
    const inv = this.invoices.get(hash);
    if (inv?.state === 'settled')
      throw new LightningError('LN_HOLD_INVOICE_INVALID_STATE', 'invoice already settled');
    if (inv) inv.state = 'canceled';
    this.canceled.push(hash);
  }
  watchInvoice(): never {
    throw new Error('not used');
  }
  async close(): Promise<void> {}
}
