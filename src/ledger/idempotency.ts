import { createHash } from 'node:crypto';
import { LedgerError, LedgerErrorCode } from './errors.js';
import type { StoredRecord } from './store.js';

/**
 * One idempotency rule for every request that moves or locks money or creates something with
 * money attached (payments, transfers, funding, invoices, escrows, tasks, streams, actuations):
 *
 * - keys are per account: `(account, key)` names one request, whatever its kind;
 * - the request is reduced to a fingerprint (operation + canonical JSON of what it asks for);
 * - a retry with the same key and fingerprint gets the first result, and nothing happens again;
 * - the same key with another fingerprint is refused: 409 `IDEMPOTENCY_CONFLICT`;
 * - a concurrent retry waits for the first request and then gets its result;
 * - the key's record (`idem!<account>!<key>` → operation, fingerprint, id of what was created)
 *   is a side record committed in the same atomic batch as what it created; a request that fails
 *   leaves no record, so it can be retried under the same key.
 */

const PREFIX = 'idem!';
/** The fingerprint of an adopted key, which any request matches. */
const LEGACY = '';

/** A side record to commit with what the request creates. */
export type IdempotencyRecords = { key: string; value: string }[];

export interface IdempotentRequest {
  /** The account the request acts for: keys are scoped to it. */
  accountId: string;
  /** The client's key; without one the request just runs. */
  key: string | undefined;
  /** What kind of request it is ('pay', 'invoice', 'escrow', ...). */
  operation: string;
  /** What the request asks for: every field that changes what happens (amounts, parties, terms). */
  request: unknown;
}

interface Entry {
  operation: string;
  fingerprint: string;
  /** Id of what the first request created (payment id, payment hash, escrow id...). */
  ref: string;
  at: number;
}

interface Store {
  listRecords(prefix: string): Promise<StoredRecord[]>;
  getRecord(key: string): Promise<string | undefined>;
  flush(): Promise<void>;
}

/** sha256 of the operation and the canonical JSON of the request (sorted keys, bigints as strings). */
export function requestFingerprint(operation: string, request: unknown): string {
  return createHash('sha256').update(canonicalJson({ operation, request })).digest('hex');
}

function canonicalJson(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return JSON.stringify(v.toString());
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : JSON.stringify(String(v));
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object') {
    const fields = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${fields.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  throw new TypeError(`cannot fingerprint a ${typeof v}`);
}

const recordKey = (accountId: string, key: string): string =>
  `${PREFIX}${encodeURIComponent(accountId)}!${encodeURIComponent(key)}`;

/** The keys used within the retention window, in memory; their records are on disk. */
export class IdempotencyKeys {
  private readonly done = new Map<string, Entry>();
  private readonly running = new Map<string, { fingerprint: string; settled: Promise<void> }>();
  private added = 0;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly retentionMs: number,
  ) {}

  /** Loads the keys used within the retention window. */
  async load(): Promise<void> {
    const since = this.now() - this.retentionMs;
    for (const r of await this.store.listRecords(PREFIX)) {
      const e = JSON.parse(r.value) as Entry;
      if (e.at >= since) this.done.set(r.key, e);
    }
  }

  /**
   * Runs `create` at most once per (account, key) and fingerprint. `create` receives `records`:
   * it calls it with the id of what it creates and commits the returned records in the same
   * batch. A retry of a finished request gets `replay(id)`.
   */
  async run<T>(
    req: IdempotentRequest,
    create: (records: (ref: string) => IdempotencyRecords) => Promise<T>,
    replay: (ref: string) => T | Promise<T>,
  ): Promise<T> {
    if (req.key === undefined) return create(() => []);
    const id = recordKey(req.accountId, req.key);
    const fingerprint = requestFingerprint(req.operation, req.request);
    for (;;) {
      const known = this.known(id);
      if (known) {
        this.assertSame(known.fingerprint, fingerprint);
        return replay(known.ref);
      }
      const busy = this.running.get(id);
      if (!busy) break;
      this.assertSame(busy.fingerprint, fingerprint);
      await busy.settled;
    }
    let entry: Entry | undefined;
    const task = create((ref) => {
      entry = { operation: req.operation, fingerprint, ref, at: this.now() };
      return [{ key: id, value: JSON.stringify(entry) }];
    });
    const settled = task.then(
      () => undefined,
      () => undefined,
    );
    this.running.set(id, { fingerprint, settled });
    try {
      const value = await task;
      if (entry) this.remember(id, entry);
      return value;
    } catch (err) {
      // Failed after its record was handed out: it counts only if the record reached the disk.
      if (entry && (await this.committed(id))) this.remember(id, entry);
      throw err;
    } finally {
      this.running.delete(id);
    }
  }

  private known(id: string): Entry | undefined {
    const e = this.done.get(id);
    if (e && e.at < this.now() - this.retentionMs) {
      this.done.delete(id);
      return undefined;
    }
    return e;
  }

  /**
   * Registers a key used before this rule existed (e.g. a payment record that names its key): its
   * retries get `ref` whatever they ask, as they did then. Memory only; a no-op for a known key.
   */
  adopt(accountId: string, key: string, operation: string, ref: string, at: number): void {
    const id = recordKey(accountId, key);
    if (!this.done.has(id)) this.done.set(id, { operation, fingerprint: LEGACY, ref, at });
  }

  private assertSame(first: string, fingerprint: string): void {
    if (first !== fingerprint && first !== LEGACY)
      throw new LedgerError(
        LedgerErrorCode.IDEMPOTENCY_CONFLICT,
        'this idempotency key was used for a different request',
      );
  }

  private async committed(id: string): Promise<boolean> {
    try {
      await this.store.flush();
      return (await this.store.getRecord(id)) !== undefined;
    } catch {
      return false;
    }
  }

  private remember(id: string, e: Entry): void {
    this.done.set(id, e);
    this.added += 1;
    if (this.added % 4096 === 0) {
      const cutoff = this.now() - this.retentionMs;
      for (const [k, v] of this.done) if (v.at < cutoff) this.done.delete(k);
    }
  }
}
