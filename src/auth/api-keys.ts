import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../domain/errors.js';
import type { RecordStore } from '../ledger/store.js';

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

export type Principal = { type: 'operator' } | { type: 'key'; key: ApiKeyRecord };

export class AuthError extends AppError {}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const KEY = /^ck_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const DUMMY = sha256('coulomb: no such key');

/** `admin` includes every other scope. */
export function hasScope(scopes: readonly Scope[], needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}

/** Scoped, expiring, revocable API keys per account; stored hashed, compared in constant time. */
export class ApiKeys {
  private readonly keys = new Map<string, ApiKeyRecord>();

  constructor(
    private readonly store: RecordStore,
    private readonly now: () => number = Date.now,
  ) {}

  async load(): Promise<void> {
    for (const r of await this.store.listRecords('key!')) {
      const k = JSON.parse(r.value) as ApiKeyRecord;
      this.keys.set(k.id, k);
    }
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
    this.keys.set(id, record);
    await this.store.putRecords([{ key: `key!${id}`, value: JSON.stringify(record) }]);
    return { key: `ck_${id}_${secret}`, record: { ...record } };
  }

  /** The key's record if the presented key is valid, unexpired and not revoked. */
  verify(presented: string): ApiKeyRecord | undefined {
    const m = KEY.exec(presented);
    const record = m ? this.keys.get(m[1]!) : undefined;
    const digest = m ? sha256(m[2]!) : DUMMY;
    const stored = record ? Buffer.from(record.hash, 'hex') : DUMMY;
    const equal = timingSafeEqual(digest, stored);
    if (!record || !equal) return undefined;
    if (record.revokedAt !== undefined) return undefined;
    if (record.expiresAt !== undefined && record.expiresAt <= this.now()) return undefined;
    return { ...record };
  }

  list(accountId: string): ApiKeyRecord[] {
    return [...this.keys.values()].filter((k) => k.accountId === accountId).map((k) => ({ ...k }));
  }

  async revoke(accountId: string, id: string): Promise<ApiKeyRecord> {
    const k = this.keys.get(id);
    if (!k || k.accountId !== accountId)
      throw new AuthError('KEY_NOT_FOUND', `no key ${id} on account ${accountId}`, 404);
    if (k.revokedAt === undefined) {
      k.revokedAt = this.now();
      await this.store.putRecords([{ key: `key!${id}`, value: JSON.stringify(k) }]);
    }
    return { ...k };
  }
}
