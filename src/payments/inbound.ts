import { KeyedQueue } from '../domain/keyed-queue.js';
import type { Msat } from '../domain/msat.js';
import type { Applied, SideRecords } from '../ledger/ledger.js';
import type { Transfer } from '../ledger/types.js';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import { LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT } from '../ledger/system-accounts.js';
import { LightningError, LightningErrorCode } from '../lightning/errors.js';
import type { Invoice } from '../lightning/types.js';
import { keys } from './codec.js';
import { PaymentsPart, type PaymentsContext } from './context.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import {
  INVOICE_CURSOR,
  InvoiceStore,
  isCredentialInvoice,
  type InvoiceStoreOptions,
} from './invoice-store.js';
import type { InvoiceRecord } from './types.js';

/**
 * Receiving: account invoices, their crediting exactly once, and the cancel intents of internal
 * settlements. Invoice records live on disk (`InvoiceStore`), read when an event, a payment or
 * a credential needs one; memory holds a bounded cache of them and of settled hashes.
 */
export class Inbound extends PaymentsPart {
  readonly invoices: InvoiceStore;
  /** One change at a time per invoice: read (memory or disk), decide, write, durable. */
  private readonly queue = new KeyedQueue();
  /** Hashes of internally settled invoices whose cancel in LND is not confirmed yet (durable intents). */
  readonly cancelIntents = new Set<string>();
  /** The attempt under way for an intent, which a second caller (reconciliation) waits for. */
  private readonly cancelling = new Map<string, Promise<void>>();

  constructor(ctx: PaymentsContext, options: InvoiceStoreOptions & { sweepEveryMs?: number } = {}) {
    super(ctx);
    this.invoices = new InvoiceStore(ctx.ledger, {
      now: () => ctx.now(),
      shared: ctx.ledger.shared,
      ...options,
    });
    this.sweepEveryMs = options.sweepEveryMs ?? 60_000;
  }

  private readonly sweepEveryMs: number;

  /** Indexes an older store once. */
  async open(): Promise<void> {
    await this.invoices.open();
  }

  /** Starts pruning expired unpaid challenges (a leader's duty). */
  startSweep(): void {
    this.invoices.startSweep(this.sweepEveryMs, (err) =>
      this.log.error({ err }, 'pruning expired invoices failed'),
    );
  }

  stopSweep(): void {
    this.invoices.stopSweep();
  }

  /**
   * Runs `fn` alone for this invoice (crediting, settling it internally): what it reads of the
   * record is what it writes over.
   */
  exclusive<T>(paymentHash: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(paymentHash, fn);
  }

  /** The record as stored (with its preimage), from memory or disk. */
  findInvoice(paymentHash: string): Promise<InvoiceRecord | undefined> {
    return this.invoices.get(paymentHash);
  }

  /** The invoice as the store has it now (a shared store), replacing memory's copy. */
  rereadInvoice(paymentHash: string): Promise<InvoiceRecord | undefined> {
    return this.invoices.reread(paymentHash);
  }

  /**
   * The preimage of one of this node's invoices, from LND (records of L402 challenges keep none).
   * LND's failure is thrown: an internal payment must not settle without the proof it sells.
   */
  async preimageOf(paymentHash: string): Promise<string | undefined> {
    return (await this.backend.lookupInvoice(paymentHash)).preimage;
  }

  /** An account's invoices, newest first, a page at a time (`before`: the `next` of the previous page). */
  async listInvoices(
    accountId: string,
    options: { limit: number; before?: string },
  ): Promise<{ invoices: InvoiceRecord[]; next?: string }> {
    if (options.before !== undefined && !INVOICE_CURSOR.test(options.before))
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'not a cursor of this listing');
    const page = await this.invoices.listByAccount(accountId, options.limit, options.before);
    const found = await Promise.all(
      page.hashes.map((h) => (this.ledger.shared ? this.invoices.current(h) : this.invoices.peek(h))),
    );
    return {
      invoices: found.filter((r): r is InvoiceRecord => r !== undefined).map(publicInvoice),
      ...(page.next !== undefined ? { next: page.next } : {}),
    };
  }

  async createInvoice(
    accountId: string,
    input: { amountMsat: Msat; description?: string; expirySeconds?: number; idempotencyKey?: string },
  ): Promise<InvoiceRecord> {
    const { idempotencyKey, ...request } = input;
    return this.ledger.idempotent(
      { accountId, key: idempotencyKey, operation: 'invoice', request },
      (records) => this.createInvoiceOnce(accountId, request, records),
      async (hash) => {
        const inv = await this.invoices.get(hash);
        if (!inv) throw new PaymentError(PaymentErrorCode.INVOICE_NOT_FOUND, `no invoice ${hash}`);
        return publicInvoice(inv);
      },
    );
  }

  private async createInvoiceOnce(
    accountId: string,
    input: { amountMsat: Msat; description?: string; expirySeconds?: number },
    idem: (hash: string) => SideRecords,
  ): Promise<InvoiceRecord> {
    const account = await this.ledger.requireAccount(accountId);
    if (account.kind === 'system')
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'system accounts do not receive invoices');
    if (input.amountMsat <= 0n)
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'amountMsat must be positive');
    const created = await this.backend.createInvoice({
      amountMsat: input.amountMsat,
      description: input.description ?? '',
      ...(input.expirySeconds !== undefined ? { expirySeconds: input.expirySeconds } : {}),
    });
    const record: InvoiceRecord = {
      paymentHash: created.paymentHash,
      accountId,
      request: created.request ?? '',
      amountMsat: input.amountMsat,
      description: created.description,
      state: 'open',
      ...(created.preimage ? { preimage: created.preimage } : {}),
      createdAt: created.createdAt.getTime(),
      expiresAt: created.expiresAt.getTime(),
    };
    await this.ledger.putRecords([...this.invoices.writes(record), ...idem(record.paymentHash)]);
    this.invoices.remember(record);
    this.publishInvoice(record);
    return publicInvoice(record);
  }

  async getInvoice(paymentHash: string): Promise<InvoiceRecord | undefined> {
    const inv = await this.invoices.current(paymentHash);
    return inv ? publicInvoice(inv) : undefined;
  }

  async invoicePayer(paymentHash: string): Promise<string | undefined> {
    const inv = await this.invoices.get(paymentHash);
    return inv?.state === 'settled' && inv.settledVia === 'internal' ? inv.payerAccountId : undefined;
  }

  /**
   * Handles an invoice update from LND (subscription or reconciliation). Idempotent: the credit
   * carries the idempotency key `invoice:<hash>`, and the invoice record commits with it.
   */
  onInvoice(invoice: Invoice): Promise<void> {
    // Only a settlement or a cancelation changes a record: LND also announces each new invoice
    // (every L402 challenge), which needs no read of its record.
    if (invoice.state !== 'settled' && invoice.state !== 'canceled') return Promise.resolve();
    return this.exclusive(invoice.paymentHash, () => this.onInvoiceAlone(invoice));
  }

  private async onInvoiceAlone(invoice: Invoice): Promise<void> {
    const rec = await this.invoices.get(invoice.paymentHash);
    if (!rec) return;
    if (invoice.state === 'canceled' && rec.state === 'open') {
      // An L402 challenge that ended unpaid leaves nothing behind.
      if (isCredentialInvoice(rec)) return this.invoices.remove(rec);
      rec.state = 'canceled';
      await this.invoices.put(rec);
      this.publishInvoice(rec);
      return;
    }
    if (invoice.state !== 'settled') return;
    if (rec.state === 'settled' && rec.settledVia === 'lightning') return;
    if (rec.settledVia === 'internal') return this.paidTwice(rec, invoice);
    await this.creditSettled(
      rec,
      invoice.receivedMsat > 0n ? invoice.receivedMsat : rec.amountMsat,
      invoice.settledAt?.getTime(),
    );
  }

  /**
   * Records an invoice issued for a service credential (L402): its settlement credits the
   * credential's account, created on first credit. On disk only (durable when this resolves):
   * an unpaid challenge takes no memory, and an expired one is pruned.
   */
  registerServiceInvoice(record: InvoiceRecord): Promise<void> {
    return this.invoices.putCold(record);
  }

  /**
   * Hot-path check for the L402 gate, from memory only (a bounded cache of settled hashes): true
   * when this invoice's credit is booked. False may still be settled: `creditProvenPayment` reads
   * the record and says so (and caches it).
   */
  isInvoiceSettled(paymentHash: string): boolean {
    return this.invoices.isSettled(paymentHash);
  }

  /**
   * Credits an invoice whose payment is proven by its preimage (an L402 credential presented
   * before LND's settlement event arrived). Same idempotency key as the subscription's credit,
   * so whichever comes first credits, once.
   */
  creditProvenPayment(
    paymentHash: string,
    fallback?: () => Promise<InvoiceRecord | undefined>,
  ): Promise<boolean> {
    return this.exclusive(paymentHash, async () => {
      let rec = await this.invoices.get(paymentHash);
      if (!rec && fallback) rec = await fallback();
      if (!rec) return false;
      if (rec.state === 'settled') return true;
      if (rec.state === 'canceled') return false;
      await this.creditSettled(rec, rec.amountMsat, this.now());
      return true;
    });
  }

  private async creditSettled(
    rec: InvoiceRecord,
    received: Msat,
    settledAt: number | undefined,
  ): Promise<void> {
    // The credit is one synchronous step on resident accounts and the resident ledger key (which
    // makes it exactly-once whatever the record says). A shared store: another instance may credit
    // the same invoice at the same moment (the leader from LND's event, a follower from the
    // preimage an L402 client presented); the debit is `sys:lightning`'s, which takes no lease, so
    // the credited account's lease is what orders the two: the second reads the first's key and
    // replays it, instead of committing a second transfer under the key (a conflicting batch,
    // which stops the instance).
    await this.ledger.ensure({
      ...(this.ledger.shared ? { spend: [rec.accountId] } : {}),
      accounts: [LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT, rec.accountId],
      keys: [`invoice:${rec.paymentHash}`],
    });
    this.ensureCredentialAccount(rec.accountId);
    const settled: InvoiceRecord = {
      ...rec,
      state: 'settled',
      settledVia: 'lightning',
      receivedMsat: received,
      settledAt: settledAt ?? this.now(),
    };
    let applied: Applied<Transfer>;
    try {
      applied = this.ledger.transfer(
        {
          debitAccountId: LIGHTNING_ACCOUNT,
          creditAccountId: rec.accountId,
          amount: received,
          code: 'invoice',
          idempotencyKey: `invoice:${rec.paymentHash}`,
        },
        this.invoices.writes(settled),
      );
    } catch (err) {
      if (!(err instanceof LedgerError) || err.code !== LedgerErrorCode.BALANCE_LIMIT_EXCEEDED) throw err;
      return this.heldAboveCeiling(rec, settled, received);
    }
    Object.assign(rec, settled);
    this.invoices.remember(rec);
    await applied.durable;
    if (!applied.replayed) this.publishInvoice(rec);
  }

  /**
   * LND settled an invoice whose credit would take the payee above the ledger's ceiling: the money
   * has arrived and cannot be refused any more, so it is booked once (same idempotency key as the
   * credit) to the operator's account, for the operator to return, and both are alerted — never
   * left unbooked, and never retried forever.
   */
  private async heldAboveCeiling(rec: InvoiceRecord, settled: InvoiceRecord, received: Msat): Promise<void> {
    const held: InvoiceRecord = { ...settled, heldByOperatorMsat: received };
    const applied = this.ledger.transfer(
      {
        debitAccountId: LIGHTNING_ACCOUNT,
        creditAccountId: OPERATOR_ACCOUNT,
        amount: received,
        code: 'invoice_held',
        memo: rec.paymentHash,
        idempotencyKey: `invoice:${rec.paymentHash}`,
      },
      this.invoices.writes(held),
    );
    Object.assign(rec, held);
    this.invoices.remember(rec);
    await applied.durable;
    if (applied.replayed) return;
    const message = `invoice ${rec.paymentHash} was paid over Lightning (${received} msat) but crediting ${rec.accountId} would exceed the ledger's balance ceiling; the amount is held on ${OPERATOR_ACCOUNT}`;
    this.log.error(
      { accountId: rec.accountId, paymentHash: rec.paymentHash, code: 'INVOICE_HELD_ABOVE_CEILING' },
      message,
    );
    this.alert(rec.accountId, 'INVOICE_HELD_ABOVE_CEILING', message);
    this.alert(OPERATOR_ACCOUNT, 'INVOICE_HELD_ABOVE_CEILING', message);
    this.publishInvoice(rec);
  }

  /**
   * An invoice settled internally was also paid over Lightning (an outside payment that reached LND
   * before the cancel). The payee has been paid already: what LND received is booked once (same
   * idempotency key as any invoice credit) to the operator's account, to be refunded to the outside
   * payer, never credited to the payee a second time. The record keeps the internal settlement and
   * notes the Lightning receipt; the operator's log and both accounts' event streams get the alert.
   */
  private async paidTwice(rec: InvoiceRecord, invoice: Invoice): Promise<void> {
    if (rec.lightningReceivedMsat !== undefined) return;
    await this.ledger.ensure({
      accounts: [LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT],
      keys: [`invoice:${rec.paymentHash}`],
    });
    if (rec.lightningReceivedMsat !== undefined) return;
    const received = invoice.receivedMsat > 0n ? invoice.receivedMsat : rec.amountMsat;
    const applied = this.ledger.transfer(
      {
        debitAccountId: LIGHTNING_ACCOUNT,
        creditAccountId: OPERATOR_ACCOUNT,
        amount: received,
        code: 'invoice_paid_twice',
        memo: rec.paymentHash,
        idempotencyKey: `invoice:${rec.paymentHash}`,
      },
      this.invoices.writes({ ...rec, lightningReceivedMsat: received }),
    );
    rec.lightningReceivedMsat = received;
    this.invoices.remember(rec);
    await applied.durable;
    if (applied.replayed) return;
    const message = `invoice ${rec.paymentHash} was paid internally and then over Lightning (${received} msat); the second payment is held on ${OPERATOR_ACCOUNT} for a refund, the payee is not credited twice`;
    this.log.error(
      { accountId: rec.accountId, paymentHash: rec.paymentHash, code: 'INVOICE_PAID_TWICE' },
      message,
    );
    this.alert(rec.accountId, 'INVOICE_PAID_TWICE', message);
    this.alert(OPERATOR_ACCOUNT, 'INVOICE_PAID_TWICE', message);
    this.publishInvoice(rec);
  }

  /**
   * Completes the durable intent to cancel in LND an invoice settled internally. The intent goes
   * only once LND has answered that the invoice can no longer be paid (canceled, or unknown to it);
   * if it was paid over Lightning meanwhile, that payment is handled as a double payment. Anything
   * else (LND unreachable, a timeout) keeps the intent for the next reconciliation or restart.
   */
  completeCancel(hash: string): Promise<void> {
    const running = this.cancelling.get(hash);
    if (running) return running;
    if (!this.cancelIntents.has(hash)) return Promise.resolve();
    const attempt = this.attemptCancel(hash).finally(() => this.cancelling.delete(hash));
    this.cancelling.set(hash, attempt);
    return attempt;
  }

  private async attemptCancel(hash: string): Promise<void> {
    try {
      await this.backend.cancelHoldInvoice(hash);
    } catch (err) {
      if (!(await this.cancelRefused(hash, err))) return;
    }
    // The invoice is final in LND now: later full reconciliations need not look it up again.
    const rec = await this.invoices.get(hash);
    if (rec) rec.closedInLnd = true;
    await this.ledger.putRecords([
      { key: keys.cancelIntent(hash), value: null },
      ...(rec ? this.invoices.writes(rec) : []),
    ]);
    this.cancelIntents.delete(hash);
  }

  /** Why LND refused a cancel: true when the invoice can no longer be paid (the intent is done). */
  private async cancelRefused(hash: string, err: unknown): Promise<boolean> {
    let lnd: Invoice;
    try {
      lnd = await this.backend.lookupInvoice(hash);
    } catch (lookupErr) {
      if (lookupErr instanceof LightningError && lookupErr.code === LightningErrorCode.INVOICE_NOT_FOUND)
        return true;
      this.log.warn({ err, hash }, 'could not cancel an internally paid invoice; retrying later');
      return false;
    }
    if (lnd.state === 'canceled') return true;
    if (lnd.state === 'settled') {
      await this.onInvoice(lnd);
      return true;
    }
    this.log.warn(
      { err, hash, state: lnd.state },
      'could not cancel an internally paid invoice; retrying later',
    );
    return false;
  }

  /** Makes an intent to cancel an internally settled invoice durable, then completes it. */
  async requestCancel(hash: string): Promise<void> {
    if (!this.cancelIntents.has(hash)) {
      await this.ledger.putRecords([{ key: keys.cancelIntent(hash), value: String(this.now()) }]);
      this.cancelIntents.add(hash);
    }
    await this.completeCancel(hash);
  }

  /**
   * Accounts of L402 credentials come into being with their first credit (inside the credit's
   * synchronous step: the id must have been `ensure`d, so a missing one is known missing).
   */
  ensureCredentialAccount(accountId: string): void {
    if (isCredentialInvoice({ accountId }) && !this.ledger.accountNow(accountId)) {
      this.ledger.createAccount({ id: accountId, kind: 'credential', name: accountId });
    }
  }

  publishInvoice(inv: InvoiceRecord): void {
    this.events.publish(inv.accountId, { type: 'invoice', invoice: publicInvoice(inv) });
  }
}

export function publicInvoice(inv: InvoiceRecord): InvoiceRecord {
  const copy = { ...inv };
  delete copy.preimage;
  delete copy.closedInLnd;
  delete copy.payerAccountId;
  return copy;
}
