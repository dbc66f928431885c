import { msat, type Msat } from '../domain/msat.js';
import type { LightningBackend } from '../lightning/backend.js';
import type { PaymentsService } from '../payments/service.js';
import type { InvoiceRecord } from '../payments/types.js';
import type { L402Authority, L402Failure } from './authority.js';
import { challengeHeaders } from './header.js';

export const credentialAccountId = (tokenId: string): string => `l402:${tokenId}`;

export interface ServiceTerms {
  name: string;
  creditMsat: Msat;
  capabilities?: string[];
  lifetimeSeconds: number;
}

export type Authorization =
  | { ok: true; tokenId: string; accountId: string; expiresAt: number }
  | { ok: false; failure: L402Failure | 'UNPAID'; message: string };

/**
 * Issues L402 challenges (an invoice from the gateway's LND plus a macaroon bound to its hash)
 * and admits credentials. A credential's prepaid credit is a ledger account, credited exactly
 * once when the invoice settles, by whichever comes first: LND's settlement event, an internal
 * payment by a gateway account, or the first presentation of the preimage.
 */
export class L402Gate {
  constructor(
    private readonly authority: L402Authority,
    private readonly backend: LightningBackend,
    private readonly payments: PaymentsService,
  ) {}

  /** A new credential offer: returns the two WWW-Authenticate headers and the invoice. */
  async challenge(
    service: ServiceTerms,
  ): Promise<{ headers: string[]; invoice: string; macaroon: string; tokenId: string }> {
    const invoice = await this.backend.createInvoice({
      amountMsat: service.creditMsat,
      description: `L402 credit for ${service.name}`,
      expirySeconds: 3600,
    });
    const hash = Buffer.from(invoice.paymentHash, 'hex');
    const minted = this.authority.mint({
      paymentHash: hash,
      service: service.name,
      lifetimeSeconds: service.lifetimeSeconds,
      ...(service.capabilities ? { capabilities: service.capabilities } : {}),
    });
    this.payments.registerServiceInvoice(
      this.record(
        invoice.paymentHash,
        credentialAccountId(minted.tokenId),
        invoice.request ?? '',
        service.creditMsat,
        invoice.preimage,
        invoice.expiresAt.getTime(),
      ),
    );
    return {
      headers: challengeHeaders(minted.macaroon, invoice.request ?? ''),
      invoice: invoice.request ?? '',
      macaroon: minted.macaroon,
      tokenId: minted.tokenId,
    };
  }

  /** A top-up: a new invoice whose settlement credits the same credential. */
  async topUp(tokenId: string, service: ServiceTerms, amount: Msat): Promise<InvoiceRecord> {
    const invoice = await this.backend.createInvoice({
      amountMsat: amount,
      description: `L402 top-up for ${service.name}`,
      expirySeconds: 3600,
    });
    const rec = this.record(
      invoice.paymentHash,
      credentialAccountId(tokenId),
      invoice.request ?? '',
      amount,
      invoice.preimage,
      invoice.expiresAt.getTime(),
    );
    this.payments.registerServiceInvoice(rec);
    return this.payments.getInvoice(rec.paymentHash)!; // the public view, without the preimage
  }

  /** Verifies a credential (no database on the hot path) and makes sure its credit is booked. */
  async authorize(header: string | undefined, service: string, capability?: string): Promise<Authorization> {
    const v = this.authority.verify(header, service, capability);
    if (!v.ok) return v;
    const accountId = credentialAccountId(v.tokenId);
    if (!this.payments.isInvoiceSettled(v.paymentHash)) {
      // The preimage proves payment; book the credit now unless LND's event already did.
      const booked = await this.payments.creditProvenPayment(v.paymentHash, () =>
        this.fromLnd(v.paymentHash, accountId),
      );
      if (!booked)
        return { ok: false, failure: 'UNPAID', message: 'the invoice of this credential is not paid' };
    }
    return { ok: true, tokenId: v.tokenId, accountId, expiresAt: v.expiresAt };
  }

  /** When the challenge's record was lost (a crash right after issuing it), LND still knows the invoice. */
  private async fromLnd(hash: string, accountId: string): Promise<InvoiceRecord | undefined> {
    const inv = await this.backend.lookupInvoice(hash).catch(() => undefined);
    if (!inv || inv.state !== 'settled') return undefined;
    return this.record(
      hash,
      accountId,
      inv.request ?? '',
      inv.receivedMsat > 0n ? inv.receivedMsat : inv.amountMsat,
      undefined,
      inv.expiresAt.getTime(),
    );
  }

  private record(
    hash: string,
    accountId: string,
    request: string,
    amount: Msat,
    preimage: string | undefined,
    expiresAt: number,
  ): InvoiceRecord {
    return {
      paymentHash: hash,
      accountId,
      request,
      amountMsat: msat(amount),
      description: 'L402 credit',
      state: 'open',
      ...(preimage ? { preimage } : {}),
      createdAt: Date.now(),
      expiresAt,
    };
  }
}
