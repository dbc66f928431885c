import { msat, type Msat } from '../domain/msat.js';
import type { LightningBackend } from '../lightning/backend.js';
import type { InvoiceRecord } from '../payments/types.js';
import type { L402Authority, L402Failure, VerifiedTerms } from './authority.js';
import { challengeHeaders } from './header.js';
import type { LockedPriority } from './priority-caveats.js';
import type { SubscriptionCaveats } from './subscription-caveats.js';

export const credentialAccountId = (tokenId: string): string => `l402:${tokenId}`;

const CREDIT_DESCRIPTION = 'L402 credit';
/** The service a credential's invoice record was for (records written before it say none). */
export const creditService = (description: string | undefined): string | undefined =>
  /^L402 credit for ([a-z0-9][a-z0-9_-]*)$/.exec(description ?? '')?.[1];

export interface ServiceTerms {
  name: string;
  creditMsat: Msat;
  capabilities?: string[];
  lifetimeSeconds: number;
  /** Also send the `version="0", token=` challenge form. */
  tokenForm?: boolean;
  /** More caveats minted into the credential (a locked priority class and price). */
  caveats?: string[];
}

/** What the gate needs of the payments' inbound invoices. */
export interface CredentialInvoices {
  /** Records a credential's invoice (on disk only: nothing in memory until it is paid). */
  registerServiceInvoice(record: InvoiceRecord): Promise<void>;
  getInvoice(paymentHash: string): Promise<InvoiceRecord | undefined>;
  /** From memory only: false can still mean settled (then `creditProvenPayment` finds it). */
  isInvoiceSettled(paymentHash: string): boolean;
  creditProvenPayment(
    paymentHash: string,
    fallback?: () => Promise<InvoiceRecord | undefined>,
  ): Promise<boolean>;
  listInvoices(accountId: string, options: { limit: number }): Promise<{ invoices: InvoiceRecord[] }>;
}

/**
 * Revocations on a store shared by several instances (`L402Revocations` with `maxAgeMs`): another
 * instance may have revoked a credential since this one last read its token id's revocation.
 */
export interface SharedRevocations {
  /** Whether this instance's knowledge of the token id's revocation is recent enough to admit on. */
  current(tokenId: string): boolean;
  /** Reads the token id's revocation again (into the authority's revoked set). */
  refresh(tokenId: string): Promise<void>;
}

export type Authorization =
  | {
      ok: true;
      tokenId: string;
      accountId: string;
      expiresAt: number;
      /** The hash of the credential's challenge invoice (its payer is the proxy's routing payer). */
      paymentHash: string;
      priority?: LockedPriority;
      subscription?: SubscriptionCaveats;
    }
  | { ok: false; failure: L402Failure | 'UNPAID'; message: string };

/**
 * Issues L402 challenges (an invoice from the gateway's LND plus a macaroon bound to its hash)
 * and admits credentials. A credential's prepaid credit is a ledger account, credited exactly
 * once when the invoice settles, by whichever comes first: LND's settlement event, an internal
 * payment by a gateway account, or the first presentation of the preimage. On a shared store
 * (`shared`) a credential is admitted only once its revocation was read within the bound.
 */
export class L402Gate {
  constructor(
    private readonly authority: L402Authority,
    private readonly backend: LightningBackend,
    private readonly payments: CredentialInvoices,
    /** A store shared by several instances: revocations another instance may have written. */
    private readonly shared?: SharedRevocations,
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
      ...(service.caveats ? { caveats: service.caveats } : {}),
    });
    // On disk before the challenge goes out: its payment, however early, finds it.
    await this.payments.registerServiceInvoice(
      this.record(
        invoice.paymentHash,
        credentialAccountId(minted.tokenId),
        '',
        service.creditMsat,
        invoice.expiresAt.getTime(),
        minted.expiresAt * 1000,
        service.name,
      ),
    );
    return {
      headers: challengeHeaders(minted.macaroon, invoice.request ?? '', {
        tokenForm: service.tokenForm === true,
      }),
      invoice: invoice.request ?? '',
      macaroon: minted.macaroon,
      tokenId: minted.tokenId,
    };
  }

  /**
   * A top-up: a new invoice whose settlement credits the same credential. It records no credential
   * expiry: the presenting copy's may be earlier than the minted one (see `credentialExpiry`).
   */
  async topUp(
    tokenId: string,
    service: ServiceTerms,
    amount: Msat,
    what: 'top-up' | 'renewal' = 'top-up',
  ): Promise<InvoiceRecord> {
    const invoice = await this.backend.createInvoice({
      amountMsat: amount,
      description: `L402 ${what} for ${service.name}`,
      expirySeconds: 3600,
    });
    const rec = this.record(
      invoice.paymentHash,
      credentialAccountId(tokenId),
      invoice.request ?? '',
      amount,
      invoice.expiresAt.getTime(),
      undefined,
      service.name,
    );
    await this.payments.registerServiceInvoice(rec);
    return rec;
  }

  /** Verifies a credential (no database on the hot path) and makes sure its credit is booked. */
  authorize(header: string | undefined, service: string, capability?: string): Promise<Authorization> {
    const now = this.authorizeNow(header, service, capability);
    return now === 'booking' ? this.booked(header, service, capability) : Promise.resolve(now);
  }

  /**
   * `authorize` without a wait when none is needed (the usual case: a refusal, or a credential
   * whose credit is known to be booked); 'booking' when its credit may still have to be booked,
   * or (a shared store) its revocation read again (then `authorize` does it).
   */
  authorizeNow(header: string | undefined, service: string, capability?: string): Authorization | 'booking' {
    const v = this.authority.verify(header, service, capability);
    if (!v.ok) return v;
    if (this.shared && !this.shared.current(v.tokenId)) return 'booking';
    if (!this.payments.isInvoiceSettled(v.paymentHash)) return 'booking';
    return authorized(v);
  }

  private async booked(
    header: string | undefined,
    service: string,
    capability?: string,
  ): Promise<Authorization> {
    let v = this.authority.verify(header, service, capability);
    if (!v.ok) return v;
    if (this.shared && !this.shared.current(v.tokenId)) {
      await this.shared.refresh(v.tokenId);
      v = this.authority.verify(header, service, capability);
      if (!v.ok) return v;
    }
    if (!this.payments.isInvoiceSettled(v.paymentHash)) {
      // The preimage proves payment; book the credit now unless LND's event already did.
      const accountId = credentialAccountId(v.tokenId);
      const booked = await this.payments.creditProvenPayment(v.paymentHash, () =>
        this.fromLnd(v.paymentHash, accountId),
      );
      if (!booked)
        return { ok: false, failure: 'UNPAID', message: 'the invoice of this credential is not paid' };
    }
    return authorized(v);
  }

  /**
   * Whether a top-up invoice of a credential (a subscription's renewal or overage credit) is
   * paid, with its credit booked: exactly once, from LND's settlement event or, when LND says it
   * settled before that event was seen, now. No preimage proves it, so LND is asked.
   */
  async toppedUp(hash: string, accountId: string): Promise<boolean> {
    if (this.payments.isInvoiceSettled(hash)) return true;
    const rec = await this.payments.getInvoice(hash);
    if (rec?.state === 'settled') return true;
    if (rec?.state === 'canceled') return false;
    const inv = await this.backend.lookupInvoice(hash).catch(() => undefined);
    if (inv?.state !== 'settled') return false;
    return this.payments.creditProvenPayment(hash, () => this.fromLnd(hash, accountId));
  }

  /**
   * When the challenge's record is gone (pruned after its expiry, or lost), LND still knows the
   * invoice.
   */
  private async fromLnd(hash: string, accountId: string): Promise<InvoiceRecord | undefined> {
    const inv = await this.backend.lookupInvoice(hash).catch(() => undefined);
    if (!inv || inv.state !== 'settled') return undefined;
    return this.record(
      hash,
      accountId,
      '',
      inv.receivedMsat > 0n ? inv.receivedMsat : inv.amountMsat,
      inv.expiresAt.getTime(),
      // Not the presented copy's expiry (it may be attenuated): unknown, so a revocation stays.
      undefined,
    );
  }

  /**
   * A credential's invoice record: what crediting it once needs. No preimage (an internal
   * payment reads it from LND) and, for a challenge, no request (the client has it).
   */
  private record(
    hash: string,
    accountId: string,
    request: string,
    amount: Msat,
    expiresAt: number,
    credentialExpiresAt: number | undefined,
    /** The service the credit is for, in the record's description (`creditService` reads it). */
    service?: string,
  ): InvoiceRecord {
    return {
      paymentHash: hash,
      accountId,
      request,
      amountMsat: msat(amount),
      description: service ? `${CREDIT_DESCRIPTION} for ${service}` : CREDIT_DESCRIPTION,
      state: 'open',
      createdAt: Date.now(),
      expiresAt,
      ...(credentialExpiresAt !== undefined && Number.isFinite(credentialExpiresAt)
        ? { credentialExpiresAt }
        : {}),
    };
  }
}

/** The authorization of a verified credential whose credit is booked. */
function authorized(v: VerifiedTerms): Authorization {
  const a: Authorization = {
    ok: true,
    tokenId: v.tokenId,
    accountId: credentialAccountId(v.tokenId),
    expiresAt: v.expiresAt,
    paymentHash: v.paymentHash,
  };
  // Optional terms assigned, not spread (no intermediate objects).
  if (v.priority) a.priority = v.priority;
  if (v.subscription) a.subscription = v.subscription;
  return a;
}

/**
 * When the credential of a token id expires (unix ms) as minted: from its challenge's invoice, the
 * only one that records it (top-ups do not); undefined when unknown (a revocation then stays).
 * For revocations (`L402Revocations`' `credentialExpiry`).
 */
export async function credentialExpiry(
  invoices: Pick<CredentialInvoices, 'listInvoices'>,
  tokenId: string,
): Promise<number | undefined> {
  const { invoices: newest } = await invoices.listInvoices(credentialAccountId(tokenId), { limit: 100 });
  return newest.find((inv) => inv.credentialExpiresAt !== undefined)?.credentialExpiresAt;
}
