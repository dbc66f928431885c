import { createHash } from 'node:crypto';
import { LedgerError, LedgerErrorCode } from './errors.js';

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
 *   leaves no record, so it can be retried under the same key;
 * - a key counts for the retention window from its record's time; with its record goes a time
 *   index entry (`idemat!<at, 15 digits>!<account>!<key>`, same batch), and a background sweep
 *   deletes the records whose retention has passed, a page at a time (see `sweep`), so the disk
 *   holds the keys of the window, not of all history. Records written before the index get
 *   their entries from a one-off, paged background job (`reindex`).
 */

const PREFIX = 'idem!';
/** Time index of the records: `idemat!<at, 15 digits>!<account>!<key>` → ''. */
const INDEX = 'idemat!';
/** Progress of the one-off indexing of records older than the index: a cursor, then 'done'. */
const INDEX_MARK = 'idemidx!v1';
/** Records per page of the sweep and of the reindex. */
const PAGE = 1000;

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
  getRecord(key: string): Promise<string | undefined>;
  listRecords(prefix: string, options?: { limit?: number; after?: string }): Promise<IdempotencyRecords>;
  putRecords(records: { key: string; value: string | null }[]): Promise<void>;
  flush(): Promise<void>;
  /**
   * On a store several instances share: runs `fn` under the account's lease, its debits bound to
   * the lease's epoch (refused if it was handed over meanwhile), so that a key read as unused is
   * still unused when what it creates is written.
   */
  underLease?<T>(accountId: string, fn: () => Promise<T>): Promise<T>;
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

/** The index entry of record `id` (account and key are URI-encoded: no `!` in them). */
const indexKey = (at: number, id: string): string =>
  `${INDEX}${String(at).padStart(15, '0')}!${id.slice(PREFIX.length)}`;

/** The record and the time an index entry names. */
function parseIndexKey(k: string): { id: string; at: number } {
  const rest = k.slice(INDEX.length);
  return { at: Number(rest.slice(0, 15)), id: PREFIX + rest.slice(16) };
}

/** A key's record and its index entry, to commit together. */
function withIndex(id: string, entry: Entry): IdempotencyRecords {
  return [
    { key: id, value: JSON.stringify(entry) },
    { key: indexKey(entry.at, id), value: '' },
  ];
}

/**
 * The record of a key used before this rule existed (e.g. a payment record that names its key),
 * written once by its owner's migration (the record first, then its index entry): its retries get `ref` whatever they ask, as they did
 * then, but only for a request of the same operation.
 */
export function legacyIdempotencyRecord(
  accountId: string,
  key: string,
  operation: string,
  ref: string,
  at: number,
): IdempotencyRecords {
  const entry: Entry = { operation, fingerprint: LEGACY, ref, at };
  return withIndex(recordKey(accountId, key), entry);
}

/** Recently used keys kept in memory; every key's record is on disk and read on demand. */
const CACHE_SIZE = 10_000;

/**
 * Keys of the retention window, read from their records on disk when asked (history is not kept
 * in memory): a bounded cache of recent ones, the requests still running, and the keys adopted
 * from records older than this rule.
 */
export class IdempotencyKeys {
  private readonly recent = new Map<string, Entry>();
  private readonly adopted = new Map<string, Entry>();
  private readonly running = new Map<string, { fingerprint: string; settled: Promise<void> }>();
  /** Keys written while a sweep runs: it leaves their records alone. */
  private renewed: Set<string> | undefined;
  private reindexing: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly now: () => number,
    private readonly retentionMs: number,
  ) {}

  /**
   * Runs `create` at most once per (account, key) and fingerprint. `create` receives `records`:
   * it calls it with the id of what it creates and commits the returned records in the same
   * batch. A retry of a finished request gets `replay(id)`.
   */
  run<T>(
    req: IdempotentRequest,
    create: (records: (ref: string) => IdempotencyRecords) => Promise<T>,
    replay: (ref: string) => T | Promise<T>,
  ): Promise<T> {
    if (req.key === undefined) return create(() => []);
    const once = (): Promise<T> => this.runKeyed(req, req.key!, create, replay);
    return this.store.underLease ? this.store.underLease(req.accountId, once) : once();
  }

  private async runKeyed<T>(
    req: IdempotentRequest,
    key: string,
    create: (records: (ref: string) => IdempotencyRecords) => Promise<T>,
    replay: (ref: string) => T | Promise<T>,
  ): Promise<T> {
    const id = recordKey(req.accountId, key);
    const fingerprint = requestFingerprint(req.operation, req.request);
    for (;;) {
      let known = this.recent.get(id);
      if (!known && !this.running.has(id)) {
        const stored = await this.store.getRecord(id);
        // A request that finished while the record was being read is in memory by now; a key
        // with no record of its own may be one adopted from an older payment.
        known =
          this.recent.get(id) ??
          (stored !== undefined ? this.cache(id, parseEntry(stored)) : this.adopted.get(id));
      }
      if (known && known.at >= this.now() - this.retentionMs) {
        this.assertSame(known, fingerprint, req.operation);
        return replay(known.ref);
      }
      const busy = this.running.get(id);
      if (!busy) break;
      this.assertSame(
        { fingerprint: busy.fingerprint, operation: req.operation },
        fingerprint,
        req.operation,
      );
      await busy.settled;
    }
    let entry: Entry | undefined;
    // Waiters wake only once this request is over (its key known or free again), never while
    // it still checks whether a failed attempt's record reached the disk.
    let over!: () => void;
    const settled = new Promise<void>((resolve) => (over = resolve));
    this.running.set(id, { fingerprint, settled });
    try {
      const value = await create((ref) => {
        entry = { operation: req.operation, fingerprint, ref, at: this.now() };
        this.renewed?.add(id);
        return withIndex(id, entry);
      });
      if (entry) this.cache(id, entry);
      return value;
    } catch (err) {
      // Failed after its record was handed out: it counts only if the record reached the disk.
      if (entry && (await this.committed(id))) this.cache(id, entry);
      throw err;
    } finally {
      this.running.delete(id);
      this.renewed?.add(id);
      over();
    }
  }

  /**
   * Registers a key used before this rule existed (e.g. a payment record that names its key): its
   * retries get `ref` whatever they ask, as they did then. Memory only; a no-op for a known key.
   */
  adopt(accountId: string, key: string, operation: string, ref: string, at: number): void {
    const id = recordKey(accountId, key);
    if (!this.adopted.has(id)) this.adopted.set(id, { operation, fingerprint: LEGACY, ref, at });
  }

  /**
   * Deletes the records whose retention has passed, with their index entries, at most `limit`
   * of them (the oldest); runs every 10 minutes. An index entry whose record has another time
   * (the key was used again since) goes alone, and so does one of a key being written or written
   * while the sweep read (it is in `running` or `renewed` until the delete is queued, and the
   * delete is queued before any later write of it). Returns how many index entries it removed.
   */
  async sweep(limit = PAGE): Promise<number> {
    if (this.renewed) return 0; // one sweep at a time
    const before = this.now() - this.retentionMs;
    const renewed = (this.renewed = new Set<string>());
    try {
      const page = await this.store.listRecords(INDEX, { limit });
      const old = page.map((r) => ({ ...parseIndexKey(r.key), entry: r.key })).filter((o) => o.at < before);
      if (old.length === 0) return 0;
      const stored = await Promise.all(old.map((o) => this.store.getRecord(o.id)));
      const deletes: { key: string; value: null }[] = [];
      old.forEach((o, i) => {
        deletes.push({ key: o.entry, value: null });
        const value = stored[i];
        if (value === undefined || renewed.has(o.id) || this.running.has(o.id)) return;
        if (parseEntry(value).at !== o.at) return;
        deletes.push({ key: o.id, value: null });
        this.recent.delete(o.id);
      });
      await this.store.putRecords(deletes);
      return old.length;
    } finally {
      this.renewed = undefined;
    }
  }

  /**
   * Gives the records written before the time index existed their index entries, once, a page
   * at a time in the background (the cursor is kept in `idemidx!v1` with each page: a crash
   * redoes at most one page). Started at open; later calls share the run.
   */
  reindex(): Promise<void> {
    return (this.reindexing ??= this.indexOlder());
  }

  private async indexOlder(): Promise<void> {
    let mark = await this.store.getRecord(INDEX_MARK);
    while (mark !== 'done') {
      const after = mark === undefined ? undefined : mark;
      const page = await this.store.listRecords(PREFIX, { limit: PAGE, ...(after ? { after } : {}) });
      const last = page[page.length - 1];
      mark = last && page.length === PAGE ? last.key : 'done';
      await this.store.putRecords([
        ...page.map((r) => ({ key: indexKey(parseEntry(r.value).at, r.key), value: '' })),
        { key: INDEX_MARK, value: mark },
      ]);
    }
  }

  /** An adopted (older) key matches any request of its own operation, and only of that one. */
  private assertSame(
    first: Pick<Entry, 'fingerprint' | 'operation'>,
    fingerprint: string,
    operation: string,
  ): void {
    const same =
      first.fingerprint === LEGACY ? first.operation === operation : first.fingerprint === fingerprint;
    if (!same)
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

  private cache(id: string, e: Entry): Entry {
    this.recent.delete(id);
    this.recent.set(id, e);
    if (this.recent.size > CACHE_SIZE) this.recent.delete(this.recent.keys().next().value as string);
    return e;
  }
}

function parseEntry(value: string): Entry {
  return JSON.parse(value) as Entry;
}
