import { BoundedCache } from '../domain/lru.js';
import type { SideRecords } from '../ledger/ledger.js';
import type { RecordStore } from '../ledger/store.js';
import { decodeInvoice, encode } from './codec.js';
import type { InvoiceRecord } from './types.js';

/**
 * Where invoice records live: on disk, read on demand, with a bounded cache in memory. Keys:
 *
 *   inv!<hash>                              the record
 *   invexp!<expiresAt, 15 digits>!<hash>    while LND may still take a payment for it: open, or
 *                                           settled internally and its cancel not confirmed by LND
 *                                           (value: '' open, `i` settled internally; `c` an open
 *                                           L402 challenge written by an older version)
 *   invexpc!<expiresAt, 15 digits>!<hash>   an open L402 challenge (value `c`): apart, so that
 *                                           reconciliation never walks a challenge flood
 *   invby!<account>!<createdAt, 15 digits>!<hash> = hash
 *                                           an account's invoices, newest first; an L402
 *                                           credential's only once paid
 *   invidx!v1                               written once the indexes cover every record
 *
 * An L402 challenge costs nothing in memory until it is paid, and on disk only its record and
 * expiry entry (no preimage, no request); an expired one never paid is deleted by `prune`.
 */
export const invoiceKeys = {
  record: (hash: string) => `inv!${hash}`,
  expiry: (expiresAt: number, hash: string) => `invexp!${pad(expiresAt)}!${hash}`,
  challengeExpiry: (expiresAt: number, hash: string) => `invexpc!${pad(expiresAt)}!${hash}`,
  byAccount: (accountId: string, createdAt: number, hash: string) =>
    `invby!${accountId}!${pad(createdAt)}!${hash}`,
  indexed: 'invidx!v1',
};

const EXPIRY_PREFIX = 'invexp!';
const CHALLENGE_EXPIRY_PREFIX = 'invexpc!';
/** Why an invoice is in the expiry index, so that its readers can skip what they do not need. */
export type LiveKind = 'open' | 'challenge' | 'internal';
const LIVE_VALUE: Record<LiveKind, string> = { open: '', challenge: 'c', internal: 'i' };
const liveKind = (rec: InvoiceRecord): LiveKind =>
  rec.state !== 'open' ? 'internal' : isCredentialInvoice(rec) ? 'challenge' : 'open';
const kindOf = (value: string): LiveKind =>
  value === LIVE_VALUE.challenge ? 'challenge' : value === LIVE_VALUE.internal ? 'internal' : 'open';
const HASH = /^[0-9a-f]{64}$/;
/** A cursor of `listByAccount`: creation time (15 digits) and hash. */
export const INVOICE_CURSOR = /^[0-9]{15}![0-9a-f]{64}$/;

function pad(ms: number): string {
  return String(Math.max(0, Math.min(Math.floor(ms), 999_999_999_999_999))).padStart(15, '0');
}

/**
 * Invoices of prepaid credentials: L402 (their account is the credential's, `l402:<token id>`)
 * and MPP charges and sessions (`mpp:<payment hash>`).
 */
export const isCredentialInvoice = (rec: Pick<InvoiceRecord, 'accountId'>): boolean =>
  rec.accountId.startsWith('l402:') || rec.accountId.startsWith('mpp:');

/** LND may still accept a payment for it (so reconciliation and the sweep look at it). */
export const isLiveInLnd = (rec: InvoiceRecord): boolean =>
  rec.state === 'open' || (rec.settledVia === 'internal' && rec.closedInLnd !== true);

export interface InvoiceStoreOptions {
  /** Invoice records kept in memory (most recently used). */
  cachedRecords?: number;
  /** Hashes of settled invoices kept in memory for the L402 hot path. */
  cachedSettled?: number;
  /** How long past its expiry an unpaid invoice stays indexed (a payment LND took just in time). */
  pruneGraceMs?: number;
  now?: () => number;
  /**
   * A store several instances share: the leader credits invoices any instance made, so memory's
   * copy of an open invoice may be behind (`current`).
   */
  shared?: boolean;
}

/** The invoice records of the payments service, on disk with a bounded cache. */
export class InvoiceStore {
  private readonly records: BoundedCache<string, InvoiceRecord>;
  private readonly settled: BoundedCache<string, true>;
  private readonly graceMs: number;
  private readonly now: () => number;
  private readonly shared: boolean;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: RecordStore,
    options: InvoiceStoreOptions = {},
  ) {
    // Not pinned: every reader falls back to disk on a miss.
    this.records = new BoundedCache(options.cachedRecords ?? 1000, Date.now, 0);
    this.settled = new BoundedCache(options.cachedSettled ?? 10_000, Date.now, 0);
    this.graceMs = options.pruneGraceMs ?? 3600_000;
    this.now = options.now ?? Date.now;
    this.shared = options.shared ?? false;
  }

  /** Indexes a store written before the indexes existed (once; later starts read one key). */
  async open(): Promise<void> {
    if ((await this.store.getRecord(invoiceKeys.indexed)) !== undefined) return;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listRecords('inv!', { limit: 500, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      await this.store.putRecords(
        page.flatMap((r) => this.writes(decodeInvoice(r.value)).filter((w) => !w.key.startsWith('inv!'))),
      );
      after = page[page.length - 1]!.key;
    }
    await this.store.putRecords([{ key: invoiceKeys.indexed, value: String(this.now()) }]);
  }

  /**
   * The record and its index entries, to write in one batch (with the ledger change that goes
   * with it). The cache is updated at once: memory is never behind what is being written.
   */
  writes(rec: InvoiceRecord): SideRecords {
    const hash = rec.paymentHash;
    const kind = isLiveInLnd(rec) ? liveKind(rec) : undefined;
    const out: SideRecords = [
      { key: invoiceKeys.record(hash), value: encode(rec) },
      {
        key: invoiceKeys.expiry(rec.expiresAt, hash),
        value: kind !== undefined && kind !== 'challenge' ? LIVE_VALUE[kind] : null,
      },
    ];
    if (isCredentialInvoice(rec))
      out.push({
        key: invoiceKeys.challengeExpiry(rec.expiresAt, hash),
        value: kind === 'challenge' ? LIVE_VALUE.challenge : null,
      });
    if (!isCredentialInvoice(rec) || rec.state === 'settled')
      out.push({ key: invoiceKeys.byAccount(rec.accountId, rec.createdAt, hash), value: hash });
    return out;
  }

  /** Files the record's latest state in memory (after `writes`, or after reading it). */
  remember(rec: InvoiceRecord): void {
    this.records.set(rec.paymentHash, rec);
    if (rec.state === 'settled') this.settled.set(rec.paymentHash, true);
  }

  /** Writes the record on its own, durably, and remembers it. */
  async put(rec: InvoiceRecord): Promise<void> {
    await this.store.putRecords(this.writes(rec));
    this.remember(rec);
  }

  /** Writes a record without keeping it in memory (an L402 challenge: nothing resident until paid). */
  async putCold(rec: InvoiceRecord): Promise<void> {
    await this.store.putRecords(this.writes(rec));
  }

  /** Deletes a record and its index entries (an L402 challenge that ended unpaid). */
  async remove(rec: InvoiceRecord): Promise<void> {
    this.records.delete(rec.paymentHash);
    this.settled.delete(rec.paymentHash);
    await this.store.putRecords([
      { key: invoiceKeys.record(rec.paymentHash), value: null },
      { key: invoiceKeys.expiry(rec.expiresAt, rec.paymentHash), value: null },
      { key: invoiceKeys.challengeExpiry(rec.expiresAt, rec.paymentHash), value: null },
      { key: invoiceKeys.byAccount(rec.accountId, rec.createdAt, rec.paymentHash), value: null },
    ]);
  }

  /**
   * Prunes every `intervalMs`: bounded passes of `perPass` entries, the next one at once while
   * they come back full (a backlog), never two sweeps at a time; until `stopSweep`.
   */
  startSweep(intervalMs: number, onError: (err: unknown) => void, perPass = 2000): void {
    if (this.timer) return;
    let running = false;
    const sweep = async (): Promise<void> => {
      if (running) return;
      running = true;
      try {
        while (this.timer && (await this.prune(perPass)) === perPass);
      } finally {
        running = false;
      }
    };
    this.timer = setInterval(() => void sweep().catch(onError), intervalMs);
    this.timer.unref();
  }

  stopSweep(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The record: from memory, else from disk (then cached). */
  async get(hash: string): Promise<InvoiceRecord | undefined> {
    const cached = this.records.get(hash);
    if (cached) return cached;
    if (!HASH.test(hash)) return undefined;
    const raw = await this.store.getRecord(invoiceKeys.record(hash));
    if (raw === undefined) return undefined;
    // Another call may have loaded or changed it meanwhile: memory wins.
    const rec = this.records.get(hash) ?? decodeInvoice(raw);
    this.remember(rec);
    return rec;
  }

  /**
   * The record as clients are answered with it: `get`, except on a shared store, where memory's
   * copy of an open invoice is checked against the store (another instance, the leader, settles
   * or cancels it there; a final state is terminal, so the store's replaces memory's open copy)
   * and one not in memory is read without being cached.
   */
  async current(hash: string): Promise<InvoiceRecord | undefined> {
    if (!this.shared) return this.get(hash);
    const cached = this.records.get(hash);
    // Not in memory: the store's copy, not cached (a listing must not fill the cache).
    if (cached === undefined) return this.peek(hash);
    if (cached.state !== 'open') return cached;
    const raw = await this.store.getRecord(invoiceKeys.record(hash));
    const latest = this.records.get(hash) ?? cached;
    if (raw === undefined || latest.state !== 'open') return latest;
    const stored = decodeInvoice(raw);
    if (stored.state === 'open') return latest;
    this.remember(stored);
    return stored;
  }

  /**
   * The record as the store has it now (a shared store: another instance may have settled it),
   * replacing memory's copy. Read under a lease that keeps other instances from changing it.
   */
  async reread(hash: string): Promise<InvoiceRecord | undefined> {
    if (!HASH.test(hash)) return undefined;
    const raw = await this.store.getRecord(invoiceKeys.record(hash));
    if (raw === undefined) return this.records.get(hash);
    const rec = decodeInvoice(raw);
    this.remember(rec);
    return rec;
  }

  /** The record for reading only (listings, reconciliation): from memory, else disk, not cached. */
  async peek(hash: string): Promise<InvoiceRecord | undefined> {
    const cached = this.records.get(hash);
    if (cached || !HASH.test(hash)) return cached;
    const raw = await this.store.getRecord(invoiceKeys.record(hash));
    return this.records.get(hash) ?? (raw === undefined ? undefined : decodeInvoice(raw));
  }

  /** From memory only: has this invoice's credit been booked? (The L402 hot path; a miss reads `get`.) */
  isSettled(hash: string): boolean {
    return this.settled.get(hash) === true;
  }

  /**
   * Invoices LND may still take a payment for, expiring first, a page at a time (`after`: the
   * `next` of the previous page).
   */
  async live(
    limit: number,
    after?: string,
  ): Promise<{ entries: { hash: string; kind: LiveKind }[]; next?: string }> {
    const page = await this.store.listRecords(EXPIRY_PREFIX, {
      limit,
      ...(after !== undefined ? { after } : {}),
    });
    const last = page[page.length - 1];
    return {
      entries: page.map((r) => ({
        hash: r.key.slice(r.key.lastIndexOf('!') + 1),
        kind: kindOf(r.value),
      })),
      ...(page.length === limit && last ? { next: last.key } : {}),
    };
  }

  /** Hashes of an account's invoices, newest first, after the cursor `before`. */
  async listByAccount(
    accountId: string,
    limit: number,
    before?: string,
  ): Promise<{ hashes: string[]; next?: string }> {
    const prefix = `invby!${accountId}!`;
    const rows = await this.store.listRecords(prefix, {
      reverse: true,
      limit: limit + 1,
      ...(before !== undefined ? { after: prefix + before } : {}),
    });
    const shown = rows.slice(0, limit);
    const last = shown[shown.length - 1];
    return {
      hashes: shown.map((r) => r.value),
      ...(rows.length > limit && last ? { next: last.key.slice(prefix.length) } : {}),
    };
  }

  /**
   * One bounded pass over the expiry index: entries past expiry (and the grace) leave it; an
   * L402 challenge never paid is deleted altogether (if it was paid after all, the preimage still
   * proves it and LND's record credits it); other records stay as the account's history.
   * Returns how many entries it removed; a full pass means more are waiting for the next one.
   */
  async prune(limit = 2000): Promise<number> {
    const challenges = await this.pruneIndex(CHALLENGE_EXPIRY_PREFIX, limit);
    return challenges === limit
      ? limit
      : challenges + (await this.pruneIndex(EXPIRY_PREFIX, limit - challenges));
  }

  private async pruneIndex(prefix: string, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    const cutoff = pad(this.now() - this.graceMs);
    const page = await this.store.listRecords(prefix, { limit });
    const due = page.filter((r) => r.key.slice(prefix.length, prefix.length + 15) < cutoff);
    if (due.length === 0) return 0;
    const hashes = due.map((r) => r.key.slice(r.key.lastIndexOf('!') + 1));
    const raws = await Promise.all(hashes.map((h) => this.store.getRecord(invoiceKeys.record(h))));
    const writes: SideRecords = due.map((r) => ({ key: r.key, value: null }));
    hashes.forEach((hash, i) => {
      const raw = raws[i];
      // Memory is ahead of disk while a settlement is being written.
      const rec = this.records.get(hash) ?? (raw === undefined ? undefined : decodeInvoice(raw));
      if (rec && rec.state === 'open' && isCredentialInvoice(rec)) {
        writes.push({ key: invoiceKeys.record(hash), value: null });
        this.records.delete(hash);
      }
    });
    await this.store.putRecords(writes);
    return due.length;
  }

  /** What is resident, for tests and metrics. */
  stats(): { cachedRecords: number; cachedSettled: number } {
    return { cachedRecords: this.records.size, cachedSettled: this.settled.size };
  }
}
