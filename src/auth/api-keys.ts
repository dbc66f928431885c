import { Type } from '@sinclair/typebox';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import { BoundedCache } from '../domain/lru.js';
import type { RecordStore } from '../ledger/store.js';
import { recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';

export const SCOPES = ['admin', 'pay', 'invoice', 'read'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyRecord {
  id: string;
  accountId: string;
  scopes: Scope[];
  /** sha256 of the secret part, hex. The key itself is shown once and never stored. */
  hash: string;
  createdAt: number;
  expiresAt?: number;
  revokedAt?: number;
  createdBy: string;
}

const ScopeField = Type.Union(SCOPES.map((s) => Type.Literal(s)));
const apiKeyCodec: RecordCodec<ApiKeyRecord> = recordCodec(
  'api key',
  Type.Object({
    id: Type.String(),
    accountId: Type.String(),
    scopes: Type.Array(ScopeField),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    createdAt: Type.Number(),
    expiresAt: Type.Optional(Type.Number()),
    revokedAt: Type.Optional(Type.Number()),
    createdBy: Type.String(),
  }),
);

const KEY_PREFIX = PREFIXES.apiKey.prefix;
const BY_PREFIX = PREFIXES.apiKeyBy.prefix;
const keyKey = (id: string): string => `${KEY_PREFIX}${id}`;
const byKey = (accountId: string, id: string): string => `${BY_PREFIX}${accountId}!${id}`;
/** Written once `keyby!` lists every key (stores from before it are indexed once at start). */
const INDEXED_MARK = `${PREFIXES.apiKeyIndexMark.prefix}v1`;
/** Key records kept in memory: the recently used ones; the rest are read from disk when presented. */
const CACHED_KEYS = 10_000;

/** A cached record and when it was read (or written) here. */
interface CachedKey {
  record: ApiKeyRecord;
  readAt: number;
}

export interface ApiKeysOptions {
  /**
   * A store shared by several instances: how long (ms) a cached record is trusted before it is
   * read again, so a key revoked through another instance is refused here within this bound.
   * Absent (one process owns the store): a cached record is trusted until it is evicted.
   */
  maxAgeMs?: number;
}

export type Principal = { type: 'operator' } | { type: 'key'; key: ApiKeyRecord };

export class AuthError extends AppError {}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const KEY = /^ck_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const DUMMY = sha256('coulomb: no such key');

/** `admin` includes every other scope. */
export function hasScope(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}

/**
 * Scoped, expiring, revocable API keys per account; stored hashed, compared in constant time.
 * Records are read from disk by the key id the presented key carries (`key!<id>`), with a
 * bounded cache of recently used ones; an account's keys are listed from `keyby!<account>!<id>`.
 * On a shared store (`maxAgeMs`) a cached record older than the bound is read again before use.
 */
export class ApiKeys {
  private readonly keys: BoundedCache<string, CachedKey>;
  private readonly maxAgeMs: number | undefined;

  constructor(
    private readonly store: RecordStore,
    private readonly now: () => number = Date.now,
    cached = CACHED_KEYS,
    options: ApiKeysOptions = {},
  ) {
    this.keys = new BoundedCache(cached, now);
    this.maxAgeMs = options.maxAgeMs;
  }

  /** Indexes the keys of a store from before `keyby!` by account, once. Loads no key. */
  async load(): Promise<void> {
    if ((await this.store.getRecord(INDEXED_MARK)) !== undefined) return;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listRecords(KEY_PREFIX, { limit: 500, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      await this.store.putRecords(
        page.map((r) => {
          const k = apiKeyCodec.decode(r.value);
          return { key: byKey(k.accountId, k.id), value: '' };
        }),
      );
      after = page[page.length - 1]!.key;
    }
    await this.store.putRecords([{ key: INDEXED_MARK, value: String(this.now()) }]);
  }

  /**
   * A key's record: from the cache (on a shared store only while younger than `maxAgeMs`), else
   * from disk (then cached). `fresh`: from disk on a shared store, whatever the cache holds.
   */
  private async record(id: string, fresh = false): Promise<ApiKeyRecord | undefined> {
    const cached = this.keys.get(id);
    if (cached && (this.maxAgeMs === undefined || (!fresh && this.now() - cached.readAt < this.maxAgeMs)))
      return cached.record;
    const readAt = this.now();
    const raw = await this.store.getRecord(keyKey(id));
    if (raw === undefined) return undefined;
    // A create or revoke that finished meanwhile is in the cache by now.
    const latest = this.keys.get(id);
    let record: ApiKeyRecord;
    if (this.maxAgeMs === undefined) record = latest?.record ?? apiKeyCodec.decode(raw);
    else {
      // Shared: the store's record wins, but a revocation (it is never undone) is kept.
      record = apiKeyCodec.decode(raw);
      const revokedAt = record.revokedAt ?? latest?.record.revokedAt;
      if (revokedAt !== undefined) record.revokedAt = revokedAt;
    }
    this.keys.set(id, { record, readAt });
    return record;
  }

  /**
   * Mints a key. The operator may mint any key; an account key needs `admin`, may only mint for
   * its own account, never a scope it lacks, and never one that outlives it.
   */
  async create(
    by: Principal,
    accountId: string,
    scopes: Scope[],
    expiresAt?: number,
  ): Promise<{ key: string; record: ApiKeyRecord }> {
    const wanted = [...new Set(scopes)];
    if (wanted.length === 0 || wanted.some((s) => !SCOPES.includes(s)))
      throw new AuthError('INVALID_SCOPES', `scopes must be among ${SCOPES.join(', ')}`, 400);
    if (expiresAt !== undefined && expiresAt <= this.now())
      throw new AuthError('INVALID_EXPIRY', 'expiry must be in the future', 400);
    if (by.type === 'key') {
      const parent = by.key;
      if (parent.accountId !== accountId)
        throw new AuthError('FORBIDDEN', 'a key can only create keys for its own account', 403);
      if (!parent.scopes.includes('admin'))
        throw new AuthError('FORBIDDEN', 'creating keys needs the admin scope', 403);
      if (wanted.some((s) => !hasScope(parent.scopes, s)))
        throw new AuthError('FORBIDDEN', 'a key cannot create a key more powerful than itself', 403);
      if (parent.expiresAt !== undefined && (expiresAt === undefined || expiresAt > parent.expiresAt)) {
        throw new AuthError('FORBIDDEN', 'a key cannot create a key that outlives it', 403);
      }
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: ApiKeyRecord = {
      id,
      accountId,
      scopes: wanted,
      hash: sha256(secret).toString('hex'),
      createdAt: this.now(),
      createdBy: by.type === 'operator' ? 'operator' : by.key.id,
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
    await this.store.putRecords([
      { key: keyKey(id), value: apiKeyCodec.encode(record) },
      { key: byKey(accountId, id), value: '' },
    ]);
    this.keys.set(id, { record, readAt: this.now() });
    return { key: `ck_${id}_${secret}`, record: { ...record } };
  }

  /** The key's record if the presented key is valid, unexpired and not revoked. */
  async verify(presented: string): Promise<ApiKeyRecord | undefined> {
    const m = KEY.exec(presented);
    const record = m ? await this.record(m[1]!) : undefined;
    const digest = m ? sha256(m[2]!) : DUMMY;
    const stored = record ? Buffer.from(record.hash, 'hex') : DUMMY;
    const equal = timingSafeEqual(digest, stored);
    if (!record || !equal) return undefined;
    if (record.revokedAt !== undefined) return undefined;
    if (record.expiresAt !== undefined && record.expiresAt <= this.now()) return undefined;
    return { ...record };
  }

  /** An account's keys, oldest id first (at most a few per account: read from disk each time). */
  async list(accountId: string): Promise<ApiKeyRecord[]> {
    const prefix = `${BY_PREFIX}${accountId}!`;
    const out: ApiKeyRecord[] = [];
    for (const r of await this.store.listRecords(prefix)) {
      const k = await this.record(r.key.slice(prefix.length));
      if (k && k.accountId === accountId) out.push({ ...k });
    }
    return out;
  }

  async revoke(accountId: string, id: string): Promise<ApiKeyRecord> {
    // A shared store: read afresh, so a revocation made elsewhere keeps its time.
    const k = /^[0-9a-f]{16}$/.test(id) ? await this.record(id, true) : undefined;
    if (!k || k.accountId !== accountId)
      throw new AuthError('KEY_NOT_FOUND', `no key ${id} on account ${accountId}`, 404);
    if (k.revokedAt === undefined) {
      k.revokedAt = this.now();
      // Refused here from now on, even if a concurrent read replaced the cached record meanwhile.
      this.keys.set(id, { record: k, readAt: this.now() });
      await this.store.putRecords([{ key: keyKey(id), value: apiKeyCodec.encode(k) }]);
    }
    return { ...k };
  }
}
