import { KeyedQueue } from '../domain/keyed-queue.js';
import { legacyIdempotencyRecord } from '../ledger/idempotency.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { IndexedItems, RecordIndex } from '../ledger/record-index.js';
import { decodeApproval, decodePayment, encode } from './codec.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import type { Approval, FinalStatus, LivePayment, Payment } from './types.js';

/** Final payments and closed approvals kept in memory (most recently used), besides the live ones. */
const RECENT_IN_MEMORY = 1000;

export const isLive = (p: Payment): p is LivePayment =>
  p.status === 'pending' || p.status === 'awaiting_approval';

/**
 * Outbound payments and their approvals, on disk as ledger side records written in the same
 * atomic batch as the money they describe:
 *
 *   pay!<id>                             the payment
 *   payopen!<id>                         present while it is not final (what a restart loads)
 *   payby!<account>!<time>!<id>  = id    the account's payments, newest first with a cursor
 *   payat!<time>!<id>            = id    every payment (full reconciliation pages through it)
 *   payhash!<hash>!<time>!<id>   = id    every attempt at a payment hash (one attempt per hash)
 *   appr!<id>, appropen!<id>, apprby!…, apprat!…   approvals, the same way
 *
 * In memory: live payments (pending, awaiting approval), open approvals, and a bounded cache of
 * recently used final ones. Everything else is read from disk when asked.
 */
export class PaymentStore {
  private readonly index = new RecordIndex<Payment>(
    'pay',
    { encode, decode: decodePayment },
    (p) => [p.accountId],
    (p) => !isLive(p),
  );
  private readonly approvalIndex = new RecordIndex<Approval>(
    'appr',
    { encode, decode: decodeApproval },
    (a) => [a.accountId],
    (a) => a.state !== 'pending',
  );
  private readonly payments: IndexedItems<Payment>;
  private readonly approvals: IndexedItems<Approval>;
  /** Live attempts by payment hash, for the synchronous half of the one-attempt-per-hash check. */
  private readonly liveByHash = new Map<string, Set<string>>();
  private readonly hashes = new KeyedQueue();

  constructor(private readonly ledger: Ledger) {
    this.payments = new IndexedItems(this.index, ledger, RECENT_IN_MEMORY);
    this.approvals = new IndexedItems(this.approvalIndex, ledger, RECENT_IN_MEMORY);
  }

  /** Loads the live payments and open approvals (indexing a store from before the indexes once). */
  async load(): Promise<void> {
    if ((await this.ledger.getRecord('payidx!v1')) === undefined) await this.migrate();
    await this.payments.load();
    await this.approvals.load();
    for (const p of this.payments.values()) this.trackHash(p);
  }

  /** The records of a payment and its index entries, for the batch that moves its money. */
  records(p: Payment): SideRecords {
    return [
      ...this.index.records(p),
      { key: `payhash!${p.paymentHash}!${this.index.cursor(p)}`, value: p.id },
    ];
  }

  approvalRecords(a: Approval): SideRecords {
    return this.approvalIndex.records(a);
  }

  /** Files a payment in memory by its state (live ones stay, final ones go to the bounded cache). */
  remember(p: Payment): void {
    this.payments.remember(p);
    this.trackHash(p);
  }

  rememberApproval(a: Approval): void {
    this.approvals.remember(a);
  }

  /** The live payments (pending or awaiting approval). */
  live(): Payment[] {
    return [...this.payments.values()];
  }

  /** The open approvals. */
  openApprovals(): Approval[] {
    return [...this.approvals.values()];
  }

  /** Payments held in memory: the live ones and the cache of recent final ones. */
  get residentPayments(): number {
    const s = this.payments.stats();
    return s.open + s.closedInMemory;
  }

  /** A live payment, from memory (final or unknown: undefined). */
  livePayment(id: string): LivePayment | undefined {
    const p = this.payments.openItem(id);
    return p && isLive(p) ? p : undefined;
  }

  /** Whether the payment is in memory and pending (what tracking loops on). */
  isPending(id: string): boolean {
    return this.payments.openItem(id)?.status === 'pending';
  }

  /** A payment in memory (live, or final and recently used); the others are on disk. */
  resident(id: string): Payment | undefined {
    return this.payments.openItem(id) ?? this.cachedFinal(id);
  }

  /**
   * A shared store: the payment as the store has it now (another instance may have finished it),
   * filed in memory by that state. Read under the payer's lease, nothing else changes it meanwhile.
   */
  async reread(id: string): Promise<Payment | undefined> {
    const p = await this.payments.reread(id);
    if (p) this.trackHash(p);
    return p;
  }

  /** The live payments on disk, every instance's (a shared store), read a page at a time. */
  liveOnDisk(): AsyncGenerator<Payment> {
    return this.payments.allOpenOnDisk();
  }

  async replayPayment(id: string): Promise<Payment> {
    return publicPayment(await this.mustPayment(id));
  }

  async find(id: string): Promise<Payment | undefined> {
    return this.payments.find(id);
  }

  async mustPayment(id: string): Promise<Payment> {
    const p = await this.payments.find(id);
    if (!p) throw new PaymentError(PaymentErrorCode.PAYMENT_NOT_FOUND, `no payment ${id}`);
    return p;
  }

  /** A shared store: the approval as the store has it now, filed in memory by that state. */
  async rereadApproval(id: string): Promise<Approval | undefined> {
    return this.approvals.reread(id);
  }

  /** The open approvals on disk, every instance's (a shared store), read a page at a time. */
  openApprovalsOnDisk(): AsyncGenerator<Approval> {
    return this.approvals.allOpenOnDisk();
  }

  async findApproval(id: string): Promise<Approval | undefined> {
    return this.approvals.peek(id);
  }

  /** An open approval, from memory (closed or unknown: undefined). */
  openApproval(id: string): Approval | undefined {
    return this.approvals.openItem(id);
  }

  /**
   * Every attempt at a payment hash: those on disk, and the live ones in memory (a reservation
   * applied but not yet written is only there). Callers decide under `withHash` and check again
   * with `liveAttempts` in the tick of their reservation.
   */
  async attempts(hash: string): Promise<Payment[]> {
    const out = new Map<string, Payment>();
    const prefix = `payhash!${hash}!`;
    for (const r of await this.ledger.listRecords(prefix)) {
      const p = await this.payments.peek(r.value);
      if (p) out.set(p.id, p);
    }
    for (const p of this.liveAttempts(hash)) out.set(p.id, p);
    return [...out.values()];
  }

  /** The id of the latest attempt at a payment hash (from disk), if any. */
  async latestAttempt(hash: string): Promise<string | undefined> {
    const [last] = await this.ledger.listRecords(`payhash!${hash}!`, { reverse: true, limit: 1 });
    return last?.value;
  }

  /** The live attempts at a payment hash, from memory (synchronous). */
  liveAttempts(hash: string): Payment[] {
    const out: Payment[] = [];
    for (const id of this.liveByHash.get(hash) ?? []) {
      const p = this.payments.openItem(id);
      if (p) out.push(p);
    }
    return out;
  }

  /**
   * Runs `fn` alone among the attempts at one payment hash: reading the attempts from disk,
   * checking them and reserving happen with no other attempt at the same hash in between.
   */
  withHash<T>(hash: string, fn: () => Promise<T>): Promise<T> {
    return this.hashes.run(hash, fn);
  }

  /** An account's payments, newest first, a page at a time (`cursor` from the previous page). */
  async page(
    accountId: string,
    limit: number,
    cursor?: string,
  ): Promise<{ payments: Payment[]; nextCursor?: string }> {
    const page = await this.index.page(this.ledger, accountId, limit, cursor);
    return { payments: await this.read(page.entries), ...(page.next ? { nextCursor: page.next } : {}) };
  }

  /** Every payment, newest first, a page at a time (full reconciliation). */
  async pageAll(limit: number, cursor?: string): Promise<{ payments: Payment[]; nextCursor?: string }> {
    const page = await this.index.page(this.ledger, undefined, limit, cursor);
    return { payments: await this.read(page.entries), ...(page.next ? { nextCursor: page.next } : {}) };
  }

  /** Approvals (an account's or all), newest first, a page at a time. */
  async pageApprovals(
    accountId: string | undefined,
    limit: number,
    cursor?: string,
  ): Promise<{ approvals: Approval[]; cursors: string[]; nextCursor?: string }> {
    const page = await this.approvalIndex.page(this.ledger, accountId, limit, cursor);
    const approvals: Approval[] = [];
    const cursors: string[] = [];
    for (const e of page.entries) {
      const a = await this.approvals.peek(e.id);
      if (a) {
        approvals.push(a);
        cursors.push(e.cursor);
      }
    }
    return { approvals, cursors, ...(page.next ? { nextCursor: page.next } : {}) };
  }

  private async read(entries: { id: string }[]): Promise<Payment[]> {
    const out: Payment[] = [];
    for (const e of entries) {
      const p = await this.payments.peek(e.id);
      if (p) out.push(p);
    }
    return out;
  }

  private cachedFinal(id: string): Payment | undefined {
    return this.payments.cached(id);
  }

  private trackHash(p: Payment): void {
    let ids = this.liveByHash.get(p.paymentHash);
    if (isLive(p)) {
      if (!ids) this.liveByHash.set(p.paymentHash, (ids = new Set()));
      ids.add(p.id);
    } else if (ids) {
      ids.delete(p.id);
      if (ids.size === 0) this.liveByHash.delete(p.paymentHash);
    }
  }

  /**
   * A store from before the indexes: writes every payment's index entries once, and the record of
   * the idempotency key an older payment names (keys are read from disk, never adopted at start).
   */
  private async migrate(): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await this.ledger.listRecords('pay!', { limit: 500, ...(after ? { after } : {}) });
      const last = page[page.length - 1];
      if (!last) break;
      const records: SideRecords = [];
      for (const r of page) {
        const p = decodePayment(r.value);
        records.push(...this.records(p));
        if (p.idempotencyKey) {
          const legacy = legacyIdempotencyRecord(
            p.accountId,
            p.idempotencyKey,
            p.kind === 'keysend' ? 'keysend' : 'pay',
            p.id,
            p.createdAt,
          );
          if ((await this.ledger.getRecord(legacy[0]!.key)) === undefined) records.push(...legacy);
        }
      }
      await this.ledger.putRecords(records);
      after = last.key;
    }
    await this.ledger.putRecords([{ key: 'payidx!v1', value: String(Date.now()) }]);
  }
}

/** Makes a live payment final, in place: its status fields, and no keysend preimage any more. */
export function finalize(p: Payment, final: FinalStatus, now: number): void {
  const held: { keysendPreimage?: string } = p;
  delete held.keysendPreimage;
  Object.assign(p, final, { updatedAt: now });
}

/** An approved payment back to pending, under a new reservation. */
export function resume(
  p: LivePayment,
  reservationId: string,
  now: number,
): LivePayment & { status: 'pending' } {
  return Object.assign(p, { status: 'pending' as const, reservationId, updatedAt: now });
}

/** A payment as callers and events see it: never the keysend preimage we hold while in flight. */
export function publicPayment(p: Payment): Payment {
  const copy = { ...p };
  const held: { keysendPreimage?: string } = copy;
  delete held.keysendPreimage;
  return copy;
}
