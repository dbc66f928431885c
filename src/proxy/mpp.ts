import { BoundedCache } from '../domain/lru.js';
import { msat, type Msat } from '../domain/msat.js';
import type { LightningBackend } from '../lightning/backend.js';
import type { CredentialInvoices } from '../l402/gate.js';
import {
  b64url,
  challengeId,
  challengeIdMatches,
  decodeRequest,
  encodeRequest,
  formatChallenge,
  formatReceipt,
  fromB64url,
  hashOf,
  jcs,
  networkOf,
  type MppChallenge,
  type MppCredential,
  type MppIntent,
  type MppLightningRequest,
  type MppProblem,
} from '../l402/mpp.js';
import type { RecordStore } from '../ledger/store.js';

/** The ledger account of an MPP charge or session: `mpp:<payment hash of its invoice>`. */
export const mppAccountId = (paymentHash: string): string => `mpp:${paymentHash}`;

/** What the MPP gate needs to know of a service. */
export interface MppTerms {
  name: string;
  intents: readonly MppIntent[];
  /** Per-request price (msat); absent for a metered service. */
  pricePerRequestMsat?: Msat;
  /** The credit a metered service sells (the session deposit when there is no per-request price). */
  creditMsat: Msat;
  depositMultiplier: number;
  idleTimeoutSeconds: number;
}

export interface MppSession {
  service: string;
  returnInvoice?: string;
  state: 'open' | 'closed';
  openedAt: number;
  closedAt?: number;
}

export type MppAuthorization =
  | {
      ok: true;
      intent: MppIntent;
      /** The payment hash (charge) or session id: the credential's key for rate limits. */
      tokenId: string;
      accountId: string;
      expiresAt: number;
      /** The `Payment-Receipt` value for a successful response. */
      receipt: string;
    }
  | {
      ok: 'close';
      sessionId: string;
      accountId: string;
      session: MppSession;
      challengeId: string;
      /** A return invoice given with the close: replaces the session's (used if not refunded yet). */
      returnInvoice?: string;
    }
  | { ok: false; problem: MppProblem; status: 400 | 402; message: string };

const CHALLENGE_TTL_S = 15 * 60;
/** The least life a return invoice must have left at open (the draft: ≥ 30 days, ≥ 2 × idleTimeout). */
const RETURN_INVOICE_MIN_S = 30 * 24 * 3600;
const SESSION_PREFIX = 'mppses!';
const fail = (problem: MppProblem, message: string, status: 400 | 402 = 402): MppAuthorization => ({
  ok: false,
  problem,
  status,
  message,
});

const sats = (m: bigint): bigint => (m + 999n) / 1000n;

/**
 * The proxy's MPP side (`Payment` scheme, Lightning method): issues charge and session
 * challenges (an invoice each, recorded like an L402 challenge for the credit account
 * `mpp:<hash>`, on disk only until paid; the challenge id is the draft's stateless HMAC binding,
 * with the service named in `opaque`), and admits credentials. A charge credential's account
 * holds what its challenge quoted and the proxy charges its one request the whole balance: the
 * empty ledger balance, durable and charged in one synchronous step, is its single use. A session's account holds the deposit;
 * its record (`mppses!<session id>`: service, return invoice, open or closed) is read on demand
 * into a bounded cache; on a store shared by several instances (`maxAgeMs`) a cached record older
 * than the bound is read again, so a session closed through another instance is refused here
 * within that bound.
 */
export class MppGate {
  private readonly sessions = new BoundedCache<string, { session: MppSession; readAt: number }>(10_000);

  constructor(
    private readonly deps: {
      secret: Buffer;
      realm: string;
      backend: LightningBackend;
      invoices: CredentialInvoices;
      records: Pick<RecordStore, 'getRecord' | 'putRecords'>;
      now?: () => number;
      /**
       * A store shared by several instances: how long (ms) a cached session record is trusted.
       * Absent (one process owns the store): until it is evicted.
       */
      maxAgeMs?: number;
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** The `WWW-Authenticate: Payment …` values of a 402 for `service`: charge first, then session. */
  async challenges(service: MppTerms): Promise<string[]> {
    const out: string[] = [];
    for (const intent of service.intents) out.push(formatChallenge(await this.challenge(service, intent)));
    return out;
  }

  private async challenge(service: MppTerms, intent: MppIntent): Promise<MppChallenge> {
    const unit = service.pricePerRequestMsat !== undefined ? sats(service.pricePerRequestMsat) : 1n;
    const amountSat =
      intent === 'charge'
        ? unit
        : service.pricePerRequestMsat !== undefined
          ? unit * BigInt(service.depositMultiplier)
          : sats(service.creditMsat);
    const expiresMs = (Math.floor(this.now() / 1000) + CHALLENGE_TTL_S) * 1000;
    const invoice = await this.deps.backend.createInvoice({
      amountMsat: msat(amountSat * 1000n),
      description: `${intent === 'charge' ? 'MPP charge' : 'MPP session deposit'} for ${service.name}`,
      expirySeconds: CHALLENGE_TTL_S,
    });
    const bolt11 = invoice.request ?? '';
    await this.deps.invoices.registerServiceInvoice({
      paymentHash: invoice.paymentHash,
      accountId: mppAccountId(invoice.paymentHash),
      request: '',
      amountMsat: msat(amountSat * 1000n),
      description: `MPP ${intent}`,
      state: 'open',
      createdAt: this.now(),
      expiresAt: invoice.expiresAt.getTime(),
      credentialExpiresAt: expiresMs,
    });
    const request: MppLightningRequest =
      intent === 'charge'
        ? {
            amount: amountSat.toString(),
            currency: 'sat',
            description: `one request to ${service.name}`,
            methodDetails: {
              invoice: bolt11,
              paymentHash: invoice.paymentHash,
              network: networkOf(bolt11),
            },
          }
        : {
            amount: unit.toString(),
            currency: 'sat',
            description: `a session with ${service.name}`,
            unitType: service.pricePerRequestMsat !== undefined ? 'request' : 'sat',
            depositInvoice: bolt11,
            paymentHash: invoice.paymentHash,
            depositAmount: amountSat.toString(),
            idleTimeout: String(service.idleTimeoutSeconds),
          };
    const unsigned: Omit<MppChallenge, 'id'> = {
      realm: this.deps.realm,
      method: 'lightning',
      intent,
      request: encodeRequest(request),
      expires: new Date(expiresMs).toISOString().replace('.000Z', 'Z'),
      opaque: b64url(jcs({ service: service.name })),
    };
    return { id: challengeId(this.deps.secret, unsigned), ...unsigned };
  }

  /** Checks a `Payment` credential for `service` and books its payment (once) when it proves one. */
  async authorize(cred: MppCredential, service: MppTerms): Promise<MppAuthorization> {
    const c = cred.challenge;
    if (c.method !== 'lightning') return fail('invalid-challenge', 'only the lightning method is offered');
    if (!challengeIdMatches(this.deps.secret, c) || c.realm !== this.deps.realm)
      return fail('invalid-challenge', 'this challenge was not issued here');
    const opaque = c.opaque ? fromB64url(c.opaque)?.toString('utf8') : undefined;
    if (opaque !== jcs({ service: service.name }))
      return fail('invalid-challenge', `this challenge is not for ${service.name}`);
    const intent = c.intent as MppIntent;
    if (!service.intents.includes(intent))
      return fail('invalid-challenge', `${service.name} does not offer the ${c.intent} intent`);
    const request = decodeRequest(c.request);
    if (!request) return fail('invalid-challenge', 'the challenge request cannot be read');
    const p = cred.payload;
    const expired = c.expires !== undefined && Date.parse(c.expires) <= this.now();
    if (intent === 'charge') {
      if (!('preimage' in p) || 'action' in p)
        return fail('malformed-credential', 'a charge credential carries {preimage}');
      const hash = request.methodDetails?.paymentHash;
      if (!hash || hashOf(p.preimage) !== hash)
        return fail('lightning/invalid-preimage', 'the preimage does not match the invoice');
      const booked = await this.book(hash);
      if (!booked) {
        if (expired) return fail('payment-expired', 'this challenge has expired');
        return fail('verification-failed', 'the invoice of this credential is not paid');
      }
      return this.admitted('charge', hash, c, Date.parse(c.expires ?? '') || Number.POSITIVE_INFINITY);
    }
    if (intent !== 'session') return fail('invalid-challenge', 'unknown intent');
    if (!('action' in p)) return fail('malformed-credential', 'a session credential carries an action');
    if (p.action === 'open') {
      const hash = request.paymentHash;
      if (!hash || hashOf(p.preimage) !== hash)
        return fail('lightning/invalid-preimage', 'the preimage does not match the deposit invoice');
      const existing = await this.session(hash);
      if (existing && existing.state === 'closed')
        return fail('lightning/session-closed', 'this session is closed');
      if (!existing) {
        if (expired) return fail('payment-expired', 'this challenge has expired');
        const minLife = Math.max(RETURN_INVOICE_MIN_S, 2 * service.idleTimeoutSeconds);
        if (p.returnInvoice !== undefined && !(await this.returnInvoiceOk(p.returnInvoice, minLife)))
          return fail(
            'lightning/invalid-return-invoice',
            `the return invoice must be a valid BOLT11 invoice of this network, without an amount, valid for at least ${minLife} more seconds`,
          );
      }
      if (!(await this.book(hash))) return fail('verification-failed', 'the deposit invoice is not paid');
      if (!existing)
        await this.saveSession(hash, {
          service: service.name,
          state: 'open',
          openedAt: this.now(),
          ...(p.returnInvoice ? { returnInvoice: p.returnInvoice } : {}),
        });
      return this.admitted('session', hash, c, Number.POSITIVE_INFINITY);
    }
    if (p.action === 'topUp')
      return fail('verification-failed', 'top-ups are not offered: close this session and open a new one');
    if (hashOf(p.preimage) !== p.sessionId)
      return fail('lightning/invalid-preimage', 'the preimage does not match the session');
    const session = await this.session(p.sessionId);
    if (!session || session.service !== service.name)
      return fail('lightning/session-not-found', 'no such session for this service');
    if (p.action === 'close') {
      if (p.returnInvoice !== undefined && !(await this.returnInvoiceOk(p.returnInvoice, 0)))
        return fail(
          'lightning/invalid-return-invoice',
          'the return invoice must be a valid BOLT11 invoice of this network, without an amount, unexpired',
        );
      return {
        ok: 'close',
        sessionId: p.sessionId,
        accountId: mppAccountId(p.sessionId),
        session,
        challengeId: c.id,
        ...(p.returnInvoice ? { returnInvoice: p.returnInvoice } : {}),
      };
    }
    if (session.state === 'closed') return fail('lightning/session-closed', 'this session is closed');
    return this.admitted('session', p.sessionId, c, Number.POSITIVE_INFINITY);
  }

  /** Marks a session closed (durable): no request is admitted with it from this moment. */
  async markClosed(sessionId: string): Promise<MppSession | undefined> {
    const s = await this.session(sessionId);
    if (!s) return undefined;
    if (s.state === 'closed') return s;
    const closed: MppSession = { ...s, state: 'closed', closedAt: this.now() };
    await this.saveSession(sessionId, closed);
    return closed;
  }

  private admitted(intent: MppIntent, hash: string, c: MppChallenge, expiresAt: number): MppAuthorization {
    return {
      ok: true,
      intent,
      tokenId: hash,
      accountId: mppAccountId(hash),
      expiresAt,
      receipt: formatReceipt({
        status: 'success',
        method: 'lightning',
        timestamp: new Date(this.now()).toISOString(),
        reference: hash,
        challengeId: c.id,
      }),
    };
  }

  /** Books the invoice's credit once (LND's event, an internal payment or this proof, first wins). */
  private async book(hash: string): Promise<boolean> {
    if (this.deps.invoices.isInvoiceSettled(hash)) return true;
    return this.deps.invoices.creditProvenPayment(hash, async () => {
      const inv = await this.deps.backend.lookupInvoice(hash).catch(() => undefined);
      if (!inv || inv.state !== 'settled') return undefined;
      return {
        paymentHash: hash,
        accountId: mppAccountId(hash),
        request: '',
        amountMsat: msat(inv.receivedMsat > 0n ? inv.receivedMsat : inv.amountMsat),
        description: 'MPP',
        state: 'open',
        createdAt: this.now(),
        expiresAt: inv.expiresAt.getTime(),
      };
    });
  }

  private async returnInvoiceOk(invoice: string, minLifeSeconds: number): Promise<boolean> {
    try {
      const d = await this.deps.backend.decodeInvoice(invoice);
      return (
        d.amountMsat === 0n && !d.isExpired && d.expiresAt.getTime() >= this.now() + minLifeSeconds * 1000
      );
    } catch {
      return false;
    }
  }

  async session(id: string): Promise<MppSession | undefined> {
    const maxAge = this.deps.maxAgeMs;
    const hit = this.sessions.get(id);
    if (hit && (maxAge === undefined || this.now() - hit.readAt < maxAge)) return hit.session;
    const readAt = this.now();
    const raw = await this.deps.records.getRecord(SESSION_PREFIX + id);
    if (raw === undefined) return undefined;
    let s = JSON.parse(raw) as MppSession;
    // A close is never undone: one made here meanwhile stands.
    const latest = this.sessions.get(id)?.session;
    if (latest?.state === 'closed' && s.state !== 'closed') s = latest;
    this.sessions.set(id, { session: s, readAt });
    return s;
  }

  private async saveSession(id: string, s: MppSession): Promise<void> {
    await this.deps.records.putRecords([{ key: SESSION_PREFIX + id, value: JSON.stringify(s) }]);
    this.sessions.set(id, { session: s, readAt: this.now() });
  }
}
