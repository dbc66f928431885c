import { BoundedCache } from '../domain/lru.js';
import type { RecordStore } from '../ledger/store.js';
import type { L402Authority } from './authority.js';
import { L402Error } from './errors.js';
import { credentialAccountId, type SharedRevocations } from './gate.js';

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
  /**
   * A store shared by several instances: how long (ms) what this instance read of a token id's
   * revocation is trusted (`current`) before the gate reads it again (`refresh`). Absent: one
   * process owns the store, and every revocation goes through its memory.
   */
  maxAgeMs?: number;
}

/** What names a credential to revoke: its token id, or the credential (or macaroon) itself. */
export type RevokeTarget = { tokenId: string } | { credential: string };

const PREFIX = 'l402rev!';
const TOKEN_ID = /^[0-9a-f]{64}$/;
/** Token ids whose revocation was read recently (as many as the authority's verified credentials). */
const CHECKED_TOKENS = 50_000;
/** A shared store: how often the revocations of expired credentials leave this instance's memory. */
const FORGET_EVERY_MS = 60_000;

/**
 * The durable list of revoked L402 credentials (`l402rev!<token id>` records beside the ledger)
 * and the authority's in-memory set that the hot path reads. A revocation is in the set before
 * it is written, so no request is admitted with it from the moment it is asked for; it is
 * answered once it is on disk, and loaded again at every start. A revocation lasts as long as
 * its credential: once the credential has expired (it is refused anyway) the revocation leaves
 * the set and the disk, so both are bounded by the live credentials.
 *
 * On a store shared by several instances (`maxAgeMs`) a revocation may be written by another
 * instance: the gate admits a credential only while this instance read its token id's revocation
 * record less than `maxAgeMs` ago (`current`), else it reads it again first (`refresh`), so a
 * revocation (or a holder's close) through any instance is honoured by all within that bound.
 * Only the token ids presented are read, each at most once per bound; what was read is kept in
 * a bounded cache, and revocations of expired credentials leave the set on every instance.
 */
export class L402Revocations implements SharedRevocations {
  private readonly now: () => number;
  private readonly credentialExpiry: (tokenId: string) => Promise<number | undefined>;
  private timer: NodeJS.Timeout | undefined;
  private readonly onError: (err: unknown) => void;
  private readonly maxAgeMs: number | undefined;
  /** A shared store: token id → when its revocation record was last read (or written) here. */
  private readonly checked: BoundedCache<string, number>;
  /** Reads of revocation records under way, one per token id. */
  private readonly reading = new Map<string, Promise<void>>();
  private forgotAt: number;

  constructor(
    private readonly store: RecordStore & { getAccount(id: string): Promise<unknown> },
    private readonly authority: L402Authority,
    options: RevocationOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.credentialExpiry = options.credentialExpiry ?? (() => Promise.resolve(undefined));
    this.onError = options.onError ?? (() => undefined);
    this.maxAgeMs = options.maxAgeMs;
    this.checked = new BoundedCache(CHECKED_TOKENS, this.now, 0);
    this.forgotAt = this.now();
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

  /**
   * Whether what this instance knows of the token id's revocation may be acted on now: always
   * without `maxAgeMs` and for a token id known revoked (a revocation is never undone);
   * otherwise while its record was read less than `maxAgeMs` ago.
   */
  current(tokenId: string): boolean {
    if (this.maxAgeMs === undefined || this.authority.revoked.has(tokenId)) return true;
    const at = this.checked.get(tokenId);
    return at !== undefined && this.now() - at < this.maxAgeMs;
  }

  /** Reads the token id's revocation record again (a shared store), into the authority's set. */
  refresh(tokenId: string): Promise<void> {
    let read = this.reading.get(tokenId);
    if (!read) {
      read = this.readRevocation(tokenId).finally(() => this.reading.delete(tokenId));
      this.reading.set(tokenId, read);
    }
    return read;
  }

  private async readRevocation(tokenId: string): Promise<void> {
    const at = this.now();
    const rev = await this.get(tokenId);
    if (rev && (rev.expiresAt === undefined || rev.expiresAt > this.now()))
      this.authority.revoked.set(tokenId, rev.expiresAt ?? Infinity);
    this.checked.set(tokenId, at);
    // Revocations read from other instances' writes: those of expired credentials leave memory
    // on every instance (the leader's prune deletes the records).
    if (at - this.forgotAt >= FORGET_EVERY_MS) {
      this.forgotAt = at;
      this.forgetExpired(at);
    }
  }

  /** Drops the revocations of credentials expired by `now` from memory; their token ids. */
  private forgetExpired(now: number): string[] {
    const expired = [...this.authority.revoked].filter(([, at]) => at <= now).map(([id]) => id);
    for (const id of expired) this.authority.revoked.delete(id);
    return expired;
  }

  /** Fills the authority's set from disk, a page at a time; expired credentials' ones are deleted. */
  async load(): Promise<void> {
    await this.sweepStored(this.now(), (rev) =>
      this.authority.revoked.set(rev.tokenId, rev.expiresAt ?? Infinity),
    );
  }

  /**
   * Drops the revocations of credentials that have expired, from memory and disk. On a shared
   * store the records are swept a page at a time (other instances wrote revocations this one
   * never read).
   */
  async prune(): Promise<number> {
    const now = this.now();
    const expired = this.forgetExpired(now);
    if (this.maxAgeMs !== undefined) return this.sweepStored(now);
    if (expired.length) await this.store.putRecords(expired.map((id) => ({ key: PREFIX + id, value: null })));
    return expired.length;
  }

  /** Deletes the stored revocations of credentials expired by `now`, handing the others to `live`. */
  private async sweepStored(now: number, live: (rev: Revocation) => void = () => undefined): Promise<number> {
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listRecords(PREFIX, { limit: 1000, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      const expired: string[] = [];
      for (const r of page) {
        const rev = decode(r.key.slice(PREFIX.length), r.value);
        if (rev.expiresAt !== undefined && rev.expiresAt <= now) expired.push(r.key);
        else live(rev);
      }
      if (expired.length) await this.store.putRecords(expired.map((key) => ({ key, value: null })));
      deleted += expired.length;
      after = page[page.length - 1]!.key;
    }
    return deleted;
  }

  has(tokenId: string): boolean {
    return this.authority.revoked.has(tokenId);
  }

  /** `has`, on a shared store after reading the token id's revocation again when not `current`. */
  async isRevoked(tokenId: string): Promise<boolean> {
    if (!this.current(tokenId)) await this.refresh(tokenId);
    return this.has(tokenId);
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
