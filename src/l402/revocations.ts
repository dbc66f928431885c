import type { RecordStore } from '../ledger/store.js';
import type { L402Authority } from './authority.js';
import { L402Error } from './errors.js';
import { credentialAccountId } from './gate.js';

export interface Revocation {
  tokenId: string;
  /** Unix milliseconds. */
  revokedAt: number;
  reason?: string;
}

/** What names a credential to revoke: its token id, or the credential (or macaroon) itself. */
export type RevokeTarget = { tokenId: string } | { credential: string };

const PREFIX = 'l402rev!';
const TOKEN_ID = /^[0-9a-f]{64}$/;

/**
 * The durable list of revoked L402 credentials (`l402rev!<token id>` records beside the ledger)
 * and the authority's in-memory set that the hot path reads. A revocation is in the set before
 * it is written, so no request is admitted with it from the moment it is asked for; it is
 * answered once it is on disk, and loaded again at every start.
 */
export class L402Revocations {
  constructor(
    private readonly store: RecordStore & { getAccount(id: string): Promise<unknown> },
    private readonly authority: L402Authority,
    private readonly now: () => number = Date.now,
  ) {}

  /** Fills the authority's set from disk (at start, before the proxy admits anything). */
  async load(): Promise<void> {
    for (const r of await this.store.listRecords(PREFIX))
      this.authority.revoked.add(r.key.slice(PREFIX.length));
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
    if ('credential' in target) {
      const id = this.authority.tokenIdOf(target.credential);
      if (!id)
        throw new L402Error(
          'INVALID_CREDENTIAL',
          'not a credential of this gateway (expected "L402 <macaroon>:<preimage>" or the macaroon in base64)',
        );
      tokenId = id;
    } else {
      tokenId = target.tokenId.toLowerCase();
      if (!TOKEN_ID.test(tokenId))
        throw new L402Error('INVALID_CREDENTIAL', 'a token id is 64 hexadecimal characters');
      if (!(await this.store.getAccount(credentialAccountId(tokenId))) && !this.has(tokenId))
        throw new L402Error('CREDENTIAL_NOT_FOUND', `no credential with token id ${tokenId} was paid here`, {
          tokenId,
        });
    }
    const existing = await this.get(tokenId);
    if (existing) {
      this.authority.revoked.add(tokenId);
      return existing;
    }
    const revocation: Revocation = { tokenId, revokedAt: this.now(), ...(reason ? { reason } : {}) };
    // Refused from now on, even while the record is being written.
    this.authority.revoked.add(tokenId);
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
  return JSON.stringify({ revokedAt: r.revokedAt, ...(r.reason ? { reason: r.reason } : {}) });
}

function decode(tokenId: string, raw: string): Revocation {
  let v: { revokedAt?: unknown; reason?: unknown } = {};
  try {
    v = JSON.parse(raw) as typeof v;
  } catch {
    // A record without details still revokes its token id.
  }
  return {
    tokenId,
    revokedAt: typeof v.revokedAt === 'number' ? v.revokedAt : 0,
    ...(typeof v.reason === 'string' ? { reason: v.reason } : {}),
  };
}
