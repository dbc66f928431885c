import type { Logger } from '../domain/logger.js';
import type { PaymentHashClaims } from './hash-claims.js';
import type { Msat } from '../domain/msat.js';
import type { Ledger } from '../ledger/ledger.js';
import { LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT } from '../ledger/system-accounts.js';
import type { LightningBackend } from '../lightning/backend.js';
import type { Invoice } from '../lightning/types.js';
import type { AuditLog } from '../policy/audit.js';
import type { PolicyRegistry } from '../policy/registry.js';
import type { SpendRequest } from '../policy/types.js';
import { Approvals } from './approvals.js';
import { keys } from './codec.js';
import { PaymentsContext } from './context.js';
import { publishBalanceEvents, type EventBus } from './events.js';
import { Inbound } from './inbound.js';
import type { InvoiceStoreOptions } from './invoice-store.js';
import { Outbound, type KeysendInput, type PayInput } from './outbound.js';
import { PaymentStore, publicPayment } from './payment-store.js';
import { Reconciliation, type Liabilities, type ReconciliationJob } from './reconciliation.js';
import type { Approval, InvoiceRecord, Payment } from './types.js';

export type { KeysendInput, Liabilities, PayInput, ReconciliationJob };

export interface PaymentsOptions {
  /** How long a pay request waits for a final outcome before answering `pending`. */
  payTimeoutMs?: number;
  approvalTtlMs?: number;
  /** A pending payment LND has no record of this long after we reserved for it never reached LND. */
  notFoundGraceMs?: number;
  reconcileIntervalMs?: number;
  now?: () => number;
  /** Invoice caches, the grace before an expired unpaid invoice is pruned, and the sweep's period. */
  invoices?: InvoiceStoreOptions & { sweepEveryMs?: number };
  /** A shared store: one live attempt per payment hash across instances, held by the database. */
  hashClaims?: PaymentHashClaims;
}

/**
 * Custodial payments on top of the ledger, the one public entry of its parts: paying
 * (`outbound.ts`), receiving and crediting (`inbound.ts`), approvals (`approvals.ts`),
 * reconciliation with LND (`reconciliation.ts`), over the payment store (`payment-store.ts`).
 */
/** How often the live indexes are compacted while the gateway runs. */
const COMPACT_INTERVAL_MS = 600_000;

export class PaymentsService {
  private readonly ctx: PaymentsContext;
  private readonly store: PaymentStore;
  private readonly inbound: Inbound;
  private readonly outbound: Outbound;
  private readonly approvals: Approvals;
  private readonly reconciliation: Reconciliation;
  private timers: NodeJS.Timeout[] = [];
  private stopBalanceEvents: (() => void) | undefined;
  private readonly reconcileIntervalMs: number;

  constructor(
    private readonly ledger: Ledger,
    private readonly backend: LightningBackend,
    policies: PolicyRegistry,
    audit: AuditLog,
    private readonly events: EventBus,
    private readonly log: Logger,
    options: PaymentsOptions = {},
  ) {
    this.ctx = new PaymentsContext(ledger, backend, policies, audit, events, log, options.now ?? Date.now, {
      payTimeoutMs: options.payTimeoutMs ?? 30_000,
      approvalTtlMs: options.approvalTtlMs ?? 15 * 60_000,
      notFoundGraceMs: options.notFoundGraceMs ?? 60_000,
    });
    this.reconcileIntervalMs = options.reconcileIntervalMs ?? 60_000;
    this.store = new PaymentStore(ledger);
    this.inbound = new Inbound(this.ctx, options.invoices);
    this.outbound = new Outbound(this.ctx, this.store, this.inbound, options.hashClaims);
    this.approvals = new Approvals(this.ctx, this.store, this.outbound);
    this.reconciliation = new Reconciliation(this.ctx, this.store, this.outbound, this.inbound);
  }

  /** Loads state, creates the system accounts, reconciles with LND, and starts the background work. */
  async start(): Promise<void> {
    await this.load();
    await this.startDuties();
  }

  /** What every instance needs to serve requests: state loaded, system accounts, the node's identity. */
  async load(): Promise<void> {
    this.stopBalanceEvents ??= publishBalanceEvents(this.ledger, this.events);
    for (const id of [LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT]) {
      if (!(await this.ledger.getAccount(id))) {
        await this.ledger.createAccount({
          id,
          kind: id === OPERATOR_ACCOUNT ? 'operator' : 'system',
          name: id,
          allowNegative: true,
        }).durable;
      }
    }
    await this.compactLiveIndexes();
    // Live payments and open approvals only: final ones stay on disk, read when asked.
    await this.store.load();
    // Invoice records stay on disk: nothing of them is loaded (older stores are indexed once).
    await this.inbound.open();
    const intentPrefix = keys.cancelIntent('');
    for (const r of await this.ledger.listRecords(intentPrefix))
      this.inbound.cancelIntents.add(r.key.slice(intentPrefix.length));
    const info = await this.backend.getNodeInfo();
    this.ctx.nodePubkey = info.pubkey;
    this.ctx.network = info.network;
  }

  /**
   * The leader's background work: reconciliation with LND now and every `reconcileIntervalMs`,
   * approval expiry, pruning of expired unpaid invoices, compaction of the live indexes.
   */
  async startDuties(): Promise<void> {
    // Only what is not final is re-tracked (a full reconciliation is an operator's background job).
    await this.reconcile({ full: false });
    this.inbound.startSweep();
    const every = (ms: number, fn: () => Promise<unknown> | void): void => {
      const t = setInterval(
        () =>
          void Promise.resolve(fn()).catch((err: unknown) =>
            this.log.error({ err }, 'background task failed'),
          ),
        ms,
      );
      t.unref();
      this.timers.push(t);
    };
    every(this.reconcileIntervalMs, () => this.reconcile({ full: false }));
    every(1000, () => this.expireApprovals());
    every(COMPACT_INTERVAL_MS, () => this.compactLiveIndexes());
  }

  /**
   * The indexes of live things that start-up and reconciliation scan (open payments and
   * approvals, unexpired invoices, open challenges, cancel intents) lose an entry whenever one
   * becomes final: compacted at start and every ten minutes, so their scans stay as long as what is live,
   * not as long as what happened since the last compaction.
   */
  private async compactLiveIndexes(): Promise<void> {
    for (const prefix of ['payopen!', 'appropen!', 'invexp!', 'invexpc!', keys.cancelIntent('')])
      await this.ledger.compactRecords(prefix);
  }

  stopDuties(): void {
    this.inbound.stopSweep();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  stop(): void {
    this.ctx.stopped = true;
    this.stopDuties();
    this.stopBalanceEvents?.();
    this.stopBalanceEvents = undefined;
  }

  // ---- paying -----------------------------------------------------------------------------

  pay(accountId: string, input: PayInput): Promise<Payment> {
    return this.outbound.pay(accountId, input);
  }

  keysend(accountId: string, input: KeysendInput): Promise<Payment> {
    return this.outbound.keysend(accountId, input);
  }

  /** Moves funds between two accounts of this gateway, within the payer's policy. */
  transfer(
    fromAccountId: string,
    toAccountId: string,
    amount: Msat,
    memo: string,
    idempotencyKey?: string,
  ): Promise<{ transferId: string; replayed: boolean }> {
    return this.outbound.transfer(fromAccountId, toAccountId, amount, memo, idempotencyKey);
  }

  /** Credits an account from the operator's funds (see `Outbound.fund`). */
  fund(accountId: string, amount: Msat, idempotencyKey?: string): Promise<void> {
    return this.outbound.fund(accountId, amount, idempotencyKey);
  }

  /**
   * Makes resident what a synchronous `authorizeSpend` and the reservation after it read: the
   * accounts and their policies. Await it right before that step.
   */
  /**
   * True when a synchronous step may debit `payer` (and credit `others`) now, without `prepare`
   * (see `Ledger.spendable`): on a shared store, the payer's lease is still this instance's and the
   * accounts and the payer's policy are resident.
   */
  spendReady(payer: string, others: readonly string[] = []): boolean {
    return this.ctx.ledger.spendable(payer, others) && this.ctx.policies.resident([payer]);
  }

  prepare(payers: readonly string[], others: readonly string[] = []): Promise<void> {
    return this.ctx.prepare(payers, others);
  }

  /** Evaluates and audits the account's policy for a spend another feature books itself. */
  authorizeSpend(accountId: string, req: SpendRequest): void {
    this.outbound.authorizeSpend(accountId, req);
  }

  /** The node this service pays from (known after start). */
  get nodeId(): string {
    return this.ctx.nodePubkey;
  }

  /**
   * A payment held in memory (live, or final and recently used), synchronously. For any payment,
   * use `findPayment`.
   */
  getPayment(id: string): Payment | undefined {
    const p = this.store.resident(id);
    return p ? publicPayment(p) : undefined;
  }

  /** A payment, from memory or disk. */
  async findPayment(id: string): Promise<Payment | undefined> {
    const p = await this.store.find(id);
    return p ? publicPayment(p) : undefined;
  }

  /** An account's payments, newest first, a page at a time (`cursor`: the previous page's `nextCursor`). */
  async pagePayments(
    accountId: string,
    page: { limit?: number; cursor?: string } = {},
  ): Promise<{ payments: Payment[]; nextCursor?: string }> {
    const r = await this.store.page(accountId, page.limit ?? 100, page.cursor);
    return { payments: r.payments.map(publicPayment), ...(r.nextCursor ? { nextCursor: r.nextCursor } : {}) };
  }

  /** Every account's payments, newest first, a page at a time from disk (`payat!` index). */
  async pageAllPayments(
    page: { limit?: number; cursor?: string } = {},
  ): Promise<{ payments: Payment[]; nextCursor?: string }> {
    const r = await this.store.pageAll(page.limit ?? 100, page.cursor);
    return { payments: r.payments.map(publicPayment), ...(r.nextCursor ? { nextCursor: r.nextCursor } : {}) };
  }

  /** Approvals waiting for an operator now (open approvals are all in memory). */
  waitingApprovals(): number {
    return this.store.openApprovals().filter((a) => a.state === 'pending').length;
  }

  /** An account's latest payments, newest first. */
  async listPayments(accountId: string, limit = 100): Promise<Payment[]> {
    return (await this.pagePayments(accountId, { limit })).payments;
  }

  /** Payments held in memory (live ones and a bounded cache of recent final ones). */
  get residentPayments(): number {
    return this.store.residentPayments;
  }

  // ---- receiving --------------------------------------------------------------------------

  createInvoice(
    accountId: string,
    input: { amountMsat: Msat; description?: string; expirySeconds?: number; idempotencyKey?: string },
  ): Promise<InvoiceRecord> {
    return this.inbound.createInvoice(accountId, input);
  }

  /** An invoice as its account sees it (no preimage), from memory or disk. */
  getInvoice(paymentHash: string): Promise<InvoiceRecord | undefined> {
    return this.inbound.getInvoice(paymentHash);
  }

  /** The gateway account that paid this invoice internally; undefined if unpaid or paid over Lightning. */
  invoicePayer(paymentHash: string): Promise<string | undefined> {
    return this.inbound.invoicePayer(paymentHash);
  }

  /** An account's invoices, newest first, a page at a time (`before`: the `next` of the previous page). */
  listInvoices(
    accountId: string,
    options: { limit: number; before?: string },
  ): Promise<{ invoices: InvoiceRecord[]; next?: string }> {
    return this.inbound.listInvoices(accountId, options);
  }

  /**
   * One bounded pass of the invoice sweep (which runs every minute): expired unpaid L402
   * challenges leave the disk, expired invoices the expiry index. Returns how many it removed.
   */
  pruneExpiredInvoices(limit?: number): Promise<number> {
    return this.inbound.invoices.prune(limit);
  }

  /** What of the invoices is in memory: bounded caches, whatever the number of invoices. */
  invoiceStats(): { cachedRecords: number; cachedSettled: number } {
    return this.inbound.invoices.stats();
  }

  /** Handles an invoice update from LND (subscription or reconciliation); idempotent. */
  onInvoice(invoice: Invoice): Promise<void> {
    return this.inbound.onInvoice(invoice);
  }

  /** Records an invoice issued for a service credential (L402) on disk, credited to its account when paid. */
  registerServiceInvoice(record: InvoiceRecord): Promise<void> {
    return this.inbound.registerServiceInvoice(record);
  }

  /** Hot-path check for the L402 gate: has this invoice's credit been booked? */
  isInvoiceSettled(paymentHash: string): boolean {
    return this.inbound.isInvoiceSettled(paymentHash);
  }

  /** Credits an invoice whose payment is proven by its preimage, once (see `Inbound`). */
  creditProvenPayment(
    paymentHash: string,
    fallback?: () => Promise<InvoiceRecord | undefined>,
  ): Promise<boolean> {
    return this.inbound.creditProvenPayment(paymentHash, fallback);
  }

  // ---- approvals --------------------------------------------------------------------------

  /** Approvals, newest first, a page at a time (pending ones from memory, the others from disk). */
  listApprovals(
    query: { state?: Approval['state']; limit?: number; cursor?: string } = {},
  ): Promise<{ approvals: Approval[]; nextCursor?: string }> {
    return this.approvals.listApprovals(query);
  }

  approve(approvalId: string, by: string): Promise<Payment> {
    return this.approvals.approve(approvalId, by);
  }

  denyApproval(approvalId: string, by: string): Promise<Payment> {
    return this.approvals.denyApproval(approvalId, by);
  }

  /** Expires approvals whose time passed, releasing their holds. */
  expireApprovals(): Promise<void> {
    return this.approvals.expireApprovals();
  }

  // ---- reconciliation ---------------------------------------------------------------------

  /** Re-tracks non-final payments and catches up on open invoices; `full` also checks final ones. */
  reconcile(options: { full: boolean }): Promise<{ checked: number; mismatches: number }> {
    return this.reconciliation.reconcile(options);
  }

  /** Starts a full reconciliation in the background; 409 `RECONCILIATION_RUNNING` while one runs. */
  startReconciliation(): ReconciliationJob {
    return this.reconciliation.startJob();
  }

  /** The last full reconciliation job's state and progress. */
  reconciliationJob(): ReconciliationJob {
    return this.reconciliation.job();
  }

  /** What the gateway owes its accounts against what the node holds. */
  liabilities(): Promise<Liabilities> {
    return this.reconciliation.liabilities();
  }
}
