import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeIdentifier, encodeIdentifier, type L402Identifier } from './identifier.js';
import { decodeV2, encodeV2, MacaroonFormatError, mint, signatureOf, type Macaroon } from './macaroon.js';
import { parseAuthorization } from './header.js';
import { lockedPriorityOf, type LockedPriority } from './priority-caveats.js';
import { subscriptionOf, type SubscriptionCaveats } from './subscription-caveats.js';

export const L402_LOCATION = 'lsat';

export type L402Failure =
  | 'MISSING'
  | 'MALFORMED'
  | 'BAD_SIGNATURE'
  | 'WRONG_PREIMAGE'
  | 'WRONG_SERVICE'
  | 'MISSING_CAPABILITY'
  | 'EXPIRED'
  | 'REVOKED';

/** What a verified credential is: its ids, expiry and the terms locked in its caveats. */
export interface VerifiedTerms {
  tokenId: string;
  paymentHash: string;
  expiresAt: number;
  priority?: LockedPriority;
  subscription?: SubscriptionCaveats;
}

export type L402Verification =
  ({ ok: true } & VerifiedTerms) | { ok: false; failure: L402Failure; message: string };

export interface MintRequest {
  paymentHash: Buffer;
  service: string;
  capabilities?: string[];
  lifetimeSeconds: number;
  /** More first-party caveats (a locked priority class and price, a subscription's terms). */
  caveats?: string[];
}

const fail = (failure: L402Failure, message: string): L402Verification => ({ ok: false, failure, message });

/** Longest Authorization header considered (a macaroon with a few dozen caveats fits easily). */
const MAX_HEADER = 8192;
/** Cache keys up to this length are the header itself; longer ones are hashed (≤ 50,000 × 1 KiB). */
const DIRECT_KEY = 1024;

/**
 * Mints and verifies L402 credentials. The root key of each token is HMAC(secret, token id), so
 * verification needs no database: one HMAC chain, one sha256 and the caveat checks. Revoked token
 * ids are in memory (with when each credential expires, after which its revocation may go), kept
 * current by `L402Revocations` (which persists them).
 */
export class L402Authority {
  /** Revoked token id → when the credential expires (unix ms; Infinity when unknown). */
  readonly revoked = new Map<string, number>();

  constructor(
    private readonly secret: Buffer,
    private readonly now: () => number = Date.now,
  ) {
    if (secret.length < 32) throw new Error('the L402 secret must be at least 32 bytes');
  }

  private rootKey(tokenId: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(tokenId).digest();
  }

  mint(req: MintRequest): { macaroon: string; tokenId: string; expiresAt: number } {
    const tokenId = randomBytes(32);
    const expiresAt = Math.floor(this.now() / 1000) + req.lifetimeSeconds;
    const caveats = [`services=${req.service}:0`];
    if (req.capabilities?.length) caveats.push(`${req.service}_capabilities=${req.capabilities.join(',')}`);
    if (req.caveats) caveats.push(...req.caveats);
    // Computed per token, at minting: never a lifetime fixed once at start.
    caveats.push(`${req.service}_valid_until=${expiresAt}`);
    const mac = mint(
      this.rootKey(tokenId),
      encodeIdentifier(req.paymentHash, tokenId),
      L402_LOCATION,
      caveats,
    );
    return { macaroon: encodeV2(mac).toString('base64'), tokenId: tokenId.toString('hex'), expiresAt };
  }

  /**
   * Credentials verified before, by the exact header, each with the service and capability it was
   * verified for: a repeat for the same skips the HMAC chain (a header presented for another
   * service or capability is verified again, and its entry then holds that one). Expiry and
   * revocation are still checked on every call.
   */
  private readonly verified = new Map<
    string,
    { service: string; capability: string | undefined; terms: VerifiedTerms; answer: L402Verification }
  >();

  /** Checks a presented `Authorization` header for `service` (and a capability, when given). */
  verify(header: string | undefined, service: string, capability?: string): L402Verification {
    // Holders can vary a valid header endlessly (caveats, encodings), so an entry's size is
    // bounded: usual headers are their own key (no hashing on the hot path), longer ones a digest.
    if (header !== undefined && header.length > MAX_HEADER)
      return fail('MALFORMED', 'the credential is too large');
    let key: string | undefined;
    if (header !== undefined)
      key = header.length > DIRECT_KEY ? `#${createHash('sha256').update(header).digest('base64')}` : header;
    const hit = key !== undefined ? this.verified.get(key) : undefined;
    if (hit && hit.service === service && hit.capability === capability) {
      if (this.revoked.has(hit.terms.tokenId)) return fail('REVOKED', 'this credential was revoked');
      if (hit.terms.expiresAt <= this.now()) return fail('EXPIRED', 'this credential has expired');
      // The same frozen answer each time: no object made per request.
      return hit.answer;
    }
    const result = this.verifyFully(header, service, capability);
    if (result.ok && key !== undefined) {
      if (!hit && this.verified.size >= 50_000) this.verified.delete(this.verified.keys().next().value!);
      const terms: VerifiedTerms = {
        tokenId: result.tokenId,
        paymentHash: result.paymentHash,
        expiresAt: result.expiresAt,
      };
      if (result.priority) terms.priority = result.priority;
      if (result.subscription) terms.subscription = result.subscription;
      this.verified.set(key, {
        service,
        capability,
        terms,
        answer: Object.freeze({ ok: true as const, ...terms }),
      });
    }
    return result;
  }

  /**
   * The token id of a credential minted here, its macaroon's signature checked: the credential
   * as sent (`L402 <macaroon>:<preimage>`, or `LSAT`) or the macaroon alone (base64). Preimage,
   * caveats and expiry are not checked: this names a credential, it does not admit one.
   */
  tokenIdOf(credential: string): string | undefined {
    return this.describe(credential)?.tokenId;
  }

  /**
   * The token id of a credential minted here (as `tokenIdOf`) and the latest moment it can be
   * valid for any service (unix ms; undefined without a valid_until caveat).
   */
  describe(credential: string): { tokenId: string; expiresAt?: number } | undefined {
    const text = credential.trim();
    if (text.length > MAX_HEADER) return undefined;
    let bytes = parseAuthorization(text)?.macaroon;
    if (!bytes && /^[A-Za-z0-9+/_-]+={0,2}$/.test(text))
      bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (!bytes?.length) return undefined;
    const signed = this.signed(bytes);
    if (!signed.ok) return undefined;
    const expiresAt = latestValidity(signed.mac.caveats);
    return {
      tokenId: signed.id.tokenId.toString('hex'),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
  }

  /** Decodes a macaroon and checks its HMAC chain against the token's derived root key. */
  private signed(
    bytes: Buffer,
  ): { ok: true; mac: Macaroon; id: L402Identifier } | { ok: false; failure: L402Failure; message: string } {
    let mac;
    try {
      mac = decodeV2(bytes);
    } catch (err) {
      if (err instanceof MacaroonFormatError)
        return { ok: false, failure: 'MALFORMED', message: err.message };
      throw err;
    }
    const id = decodeIdentifier(mac.identifier);
    if (!id) return { ok: false, failure: 'MALFORMED', message: 'unknown macaroon identifier' };
    const expected = signatureOf(this.rootKey(id.tokenId), mac.identifier, mac.caveats);
    if (!timingSafeEqual(expected, mac.signature))
      return { ok: false, failure: 'BAD_SIGNATURE', message: 'the macaroon signature does not verify' };
    return { ok: true, mac, id };
  }

  private verifyFully(header: string | undefined, service: string, capability?: string): L402Verification {
    const cred = parseAuthorization(header);
    if (!cred)
      return fail(
        header ? 'MALFORMED' : 'MISSING',
        header ? 'the Authorization header is not an L402 credential' : 'no credential',
      );
    const signed = this.signed(cred.macaroon);
    if (!signed.ok) return signed;
    const { mac, id } = signed;
    if (!timingSafeEqual(createHash('sha256').update(cred.preimage).digest(), id.paymentHash))
      return fail('WRONG_PREIMAGE', 'the preimage does not match the payment hash');
    const tokenId = id.tokenId.toString('hex');
    if (this.revoked.has(tokenId)) return fail('REVOKED', 'this credential was revoked');
    const nowSec = Math.floor(this.now() / 1000);
    let expiresAt = Number.POSITIVE_INFINITY;
    let services: Set<string> | undefined;
    let capabilities: Set<string> | undefined;
    // Caveats only ever restrict: each one narrows what earlier ones allowed.
    for (const c of mac.caveats) {
      const eq = c.indexOf('=');
      if (eq < 0) continue;
      const key = c.slice(0, eq).trim();
      const value = c.slice(eq + 1).trim();
      if (key === 'services') {
        const names = new Set(value.split(',').map((s) => s.trim().split(':')[0]!));
        services = services ? new Set([...services].filter((n) => names.has(n))) : names;
      } else if (key === `${service}_capabilities`) {
        const caps = new Set(value.split(',').map((s) => s.trim()));
        capabilities = capabilities ? new Set([...capabilities].filter((n) => caps.has(n))) : caps;
      } else if (key === `${service}_valid_until`) {
        const t = Number(value);
        if (!Number.isFinite(t)) return fail('MALFORMED', 'bad valid_until caveat');
        expiresAt = Math.min(expiresAt, t);
      }
    }
    if (!services || !services.has(service))
      return fail('WRONG_SERVICE', `this credential is not valid for ${service}`);
    if (capability && capabilities && !capabilities.has(capability))
      return fail('MISSING_CAPABILITY', `this credential lacks the ${capability} capability`);
    if (expiresAt <= nowSec) return fail('EXPIRED', 'this credential has expired');
    const priority = lockedPriorityOf(mac.caveats, service);
    if (priority === 'conflict') return fail('MALFORMED', 'conflicting priority caveats');
    const subscription = subscriptionOf(mac.caveats, service);
    if (subscription === 'conflict') return fail('MALFORMED', 'conflicting subscription caveats');
    return {
      ok: true,
      tokenId,
      paymentHash: id.paymentHash.toString('hex'),
      expiresAt: Number.isFinite(expiresAt) ? expiresAt * 1000 : Number.POSITIVE_INFINITY,
      ...(priority ? { priority } : {}),
      ...(subscription ? { subscription } : {}),
    };
  }
}

/**
 * The latest moment (unix ms) a macaroon can be valid for any of the services its first
 * `services` caveat names: for each, the earliest of its valid_until caveats (each caveat only
 * restricts); undefined when one of them has none.
 */
function latestValidity(caveats: string[]): number | undefined {
  const until = new Map<string, number>();
  let services: string[] | undefined;
  for (const c of caveats) {
    const eq = c.indexOf('=');
    if (eq < 0) continue;
    const key = c.slice(0, eq).trim();
    const value = c.slice(eq + 1).trim();
    if (key === 'services') services ??= value.split(',').map((s) => s.trim().split(':')[0]!);
    else if (key.endsWith('_valid_until')) {
      const name = key.slice(0, -'_valid_until'.length);
      const t = Number(value);
      if (Number.isFinite(t)) until.set(name, Math.min(until.get(name) ?? t, t));
    }
  }
  if (!services?.length) return undefined;
  let latest = 0;
  for (const name of services) {
    const t = until.get(name);
    if (t === undefined) return undefined;
    latest = Math.max(latest, t * 1000);
  }
  return latest;
}
