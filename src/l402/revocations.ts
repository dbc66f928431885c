import type { RecordStore } from '../ledger/store.js';
import type { L402Authority } from './authority.js';
import { L402Error } from './errors.js';
import { credentialAccountId } from './gate.js';

export interface Revocation {
  tokenId: string;
  /** Unix milliseconds. */
  revokedAt: number;
  reason?: string;
  /** When the credential expires (unix ms), when known: the revocation is dropped after it. */
  expiresAt?: number;
}

export interface RevocationOptions {
  now?: () => number;
  /**
   * When the credential of a token id expires (unix ms), for a revocation by token id (one by
   * credential reads it from the macaroon); undefined when unknown (the revocation is kept).
   */
  credentialExpiry?: (tokenId: string) => Promise<number | undefined>;
  /** A periodic prune that failed (it is tried again at the next one). */
  onError?: (err: unknown) => void;
}

/** What names a credential to revoke: its token id, or the credential (or macaroon) itself. */
export type RevokeTarget = { tokenId: string } | { credential: string };

const PREFIX = 'l402rev!';
const TOKEN_ID = /^[0-9a-f]{64}$/;

/**
 * The durable list of revoked L402 credentials (`l402rev!<token id>` records beside the ledger)
 * and the authority's in-memory set that the hot path reads. A revocation is in the set before
 * it is written, so no request is admitted with it from the moment it is asked for; it is
 * answered once it is on disk, and loaded again at every start. A revocation lasts as long as
 * its credential: once the credential has expired (it is refused anyway) the revocation leaves
 * the set and the disk, so both are bounded by the live credentials.
 */
export class L402Revocations {
  private readonly now: () => number;
  private readonly credentialExpiry: (tokenId: string) => Promise<number | undefined>;
  private timer: NodeJS.Timeout | undefined;
  private readonly onError: (err: unknown) => void;

  constructor(
    private readonly store: RecordStore & { getAccount(id: string): Promise<unknown> },
    private readonly authority: L402Authority,
    options: RevocationOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.credentialExpiry = options.credentialExpiry ?? (() => Promise.resolve(undefined));
    this.onError = options.onError ?? (() => undefined);
  }

  /**
   * Loads the revocations (before the proxy admits anything) and drops those of expired
   * credentials every `pruneEveryMs` until `stop`.
   */
  async start(pruneEveryMs = 3600_000): Promise<void> {
    await this.load();
    this.startPruning(pruneEveryMs);
  }

  /** Drops the revocations of expired credentials every `pruneEveryMs` (the leader's duty). */
  startPruning(pruneEveryMs = 3600_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.prune().catch(this.onError), pruneEveryMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Fills the authority's set from disk, a page at a time; expired credentials' ones are deleted. */
  async load(): Promise<void> {
    const now = this.now();
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listRecords(PREFIX, { limit: 1000, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      const expired: string[] = [];
      for (const r of page) {
        const rev = decode(r.key.slice(PREFIX.length), r.value);
        if (rev.expiresAt !== undefined && rev.expiresAt <= now) expired.push(r.key);
        else this.authority.revoked.set(rev.tokenId, rev.expiresAt ?? Infinity);
      }
      if (expired.length) await this.store.putRecords(expired.map((key) => ({ key, value: null })));
      after = page[page.length - 1]!.key;
    }
  }

  /** Drops the revocations of credentials that have expired, from memory and disk. */
  async prune(): Promise<number> {
    const now = this.now();
    const expired = [...this.authority.revoked].filter(([, at]) => at <= now).map(([id]) => id);
    for (const id of expired) this.authority.revoked.delete(id);
    if (expired.length) await this.store.putRecords(expired.map((id) => ({ key: PREFIX + id, value: null })));
    return expired.length;
  }

  has(tokenId: string): boolean {
    return this.authority.revoked.has(tokenId);
  }

  /**
   * Revokes a credential, by token id (one this gateway has credited: its ledger account
   * exists) or by the credential itself (its signature proves it was minted here, paid or not).
   * Revoking again answers the first revocation.
   */
  async revoke(target: RevokeTarget, reason?: string): Promise<Revocation> {
    let tokenId: string;
    let expiresAt: number | undefined;
    if ('credential' in target) {
      const described = this.authority.describe(target.credential);
      if (!described)
        throw new L402Error(
          'INVALID_CREDENTIAL',
          'not a credential of this gateway (expected "L402 <macaroon>:<preimage>" or the macaroon in base64)',
        );
      tokenId = described.tokenId;
      // From what was minted (the challenge's record), never from the copy presented: a holder can
      // add an earlier valid_until to a copy, and the revocation must outlast the original.
      expiresAt = await this.credentialExpiry(tokenId);
    } else {
      tokenId = target.tokenId.toLowerCase();
      if (!TOKEN_ID.test(tokenId))
        throw new L402Error('INVALID_CREDENTIAL', 'a token id is 64 hexadecimal characters');
      if (!(await this.store.getAccount(credentialAccountId(tokenId))) && !this.has(tokenId))
        throw new L402Error('CREDENTIAL_NOT_FOUND', `no credential with token id ${tokenId} was paid here`, {
          tokenId,
        });
      // Refused from now on, whatever the lookup of its expiry takes.
      if (!this.has(tokenId)) this.authority.revoked.set(tokenId, Infinity);
      expiresAt = await this.credentialExpiry(tokenId);
    }
    const existing = await this.get(tokenId);
    if (existing) {
      this.authority.revoked.set(tokenId, existing.expiresAt ?? Infinity);
      return existing;
    }
    const revocation: Revocation = {
      tokenId,
      revokedAt: this.now(),
      ...(reason ? { reason } : {}),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
    // Refused from now on, even while the record is being written.
    this.authority.revoked.set(tokenId, expiresAt ?? Infinity);
    await this.store.putRecords([{ key: PREFIX + tokenId, value: encode(revocation) }]);
    return revocation;
  }

  async get(tokenId: string): Promise<Revocation | undefined> {
    const raw = await this.store.getRecord(PREFIX + tokenId);
    return raw === undefined ? undefined : decode(tokenId, raw);
  }

  /** Revocations in token id order, a page at a time (`after`: the last token id of the previous page). */
  async list(options: {
    limit: number;
    after?: string;
  }): Promise<{ revocations: Revocation[]; next?: string }> {
    const records = await this.store.listRecords(PREFIX, {
      limit: options.limit + 1,
      ...(options.after !== undefined ? { after: PREFIX + options.after } : {}),
    });
    const page = records.slice(0, options.limit).map((r) => decode(r.key.slice(PREFIX.length), r.value));
    return records.length > options.limit
      ? { revocations: page, next: page[page.length - 1]!.tokenId }
      : { revocations: page };
  }
}

function encode(r: Revocation): string {
  return JSON.stringify({
    revokedAt: r.revokedAt,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
  });
}

function decode(tokenId: string, raw: string): Revocation {
  let v: { revokedAt?: unknown; reason?: unknown; expiresAt?: unknown } = {};
  try {
    v = JSON.parse(raw) as typeof v;
  } catch {
    // A record without details still revokes its token id.
  }
  return {
    tokenId,
    revokedAt: typeof v.revokedAt === 'number' ? v.revokedAt : 0,
    ...(typeof v.reason === 'string' ? { reason: v.reason } : {}),
    ...(typeof v.expiresAt === 'number' ? { expiresAt: v.expiresAt } : {}),
  };
}
