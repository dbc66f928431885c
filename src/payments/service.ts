import { randomBytes, randomUUID } from 'node:crypto';
import { isPubkey, paymentHashOf } from '../domain/hex.js';
import { msat, type Msat } from '../domain/msat.js';
import type { Applied, Ledger, SideRecords } from '../ledger/ledger.js';
import type { Transfer } from '../ledger/types.js';
import { balanceOf, isGatewayAccount } from '../ledger/types.js';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import { LightningError, LightningErrorCode } from '../lightning/errors.js';
import type { LightningBackend } from '../lightning/backend.js';
import { customRecordsProblem } from '../lightning/records.js';
import type { DecodedInvoice, Invoice, PaymentOutcome, TlvRecord } from '../lightning/types.js';
import type { AuditLog } from '../policy/audit.js';
import { evaluate } from '../policy/engine.js';
import { PolicyDeniedError } from '../policy/errors.js';
import type { PolicyRegistry } from '../policy/registry.js';
import type { Decision, SpendRequest } from '../policy/types.js';
import { decodeApproval, decodeInvoice, decodePayment, encode, keys } from './codec.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import { publishBalanceEvents, type EventBus } from './events.js';
import { defaultFeeLimit } from './fee-limit.js';
import { spendContext } from './spend-context.js';
import type { Approval, InvoiceRecord, Payment } from './types.js';

export const LIGHTNING_ACCOUNT = 'sys:lightning';
export const OPERATOR_ACCOUNT = 'sys:operator';

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PaymentsOptions {
  /** How long a pay request waits for a final outcome before answering `pending`. */
  payTimeoutMs?: number;
  approvalTtlMs?: number;
  /** A pending payment LND has no record of this long after we reserved for it never reached LND. */
  notFoundGraceMs?: number;
  reconcileIntervalMs?: number;
  now?: () => number;
}

export interface PayInput {
  request: string;
  amountMsat?: Msat;
  maxFeeMsat?: Msat;
  idempotencyKey?: string;
}

export interface KeysendInput {
  destination: string;
  amountMsat: Msat;
  maxFeeMsat?: Msat;
  records?: TlvRecord[];
  idempotencyKey?: string;
}

export interface Liabilities {
  accountsMsat: string;
  pendingOutMsat: string;
  nodeChannelLocalMsat: string;
  nodeOnchainMsat: string;
  /** Node funds over liabilities, as a decimal string ratio (e.g. "1.25"); "inf" without liabilities. */
  coverage: string;
}

/**
 * Custodial payments on top of the ledger: policy check and reservation in one synchronous step,
 * the same fee limit passed to LND, post on success, void only on a definitive failure, internal
 * settlement between accounts of this gateway, crediting of settled invoices exactly once, and
 * reconciliation against LND.
 */
export class PaymentsService {
  private readonly payments = new Map<string, Payment>();
  private readonly byHash = new Map<string, string>();
  private readonly invoices = new Map<string, InvoiceRecord>();
  private readonly approvals = new Map<string, Approval>();
  private readonly tracking = new Set<string>();
  /** Hashes of internally settled invoices whose cancel in LND is not confirmed yet (durable intents). */
  private readonly cancelIntents = new Set<string>();
  /** The attempt under way for an intent, which a second caller (reconciliation) waits for. */
  private readonly cancelling = new Map<string, Promise<void>>();
  private timers: NodeJS.Timeout[] = [];
  private stopBalanceEvents: (() => void) | undefined;
  private stopped = false;
  private nodePubkey = '';
  private network = '';
  private readonly now: () => number;
  private readonly payTimeoutMs: number;
  private readonly approvalTtlMs: number;
  private readonly notFoundGraceMs: number;
  private readonly reconcileIntervalMs: number;

  constructor(
    private readonly ledger: Ledger,
    private readonly backend: LightningBackend,
    private readonly policies: PolicyRegistry,
    private readonly audit: AuditLog,
    private readonly events: EventBus,
    private readonly log: Logger,
    options: PaymentsOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.payTimeoutMs = options.payTimeoutMs ?? 30_000;
    this.approvalTtlMs = options.approvalTtlMs ?? 15 * 60_000;
    this.notFoundGraceMs = options.notFoundGraceMs ?? 60_000;
    this.reconcileIntervalMs = options.reconcileIntervalMs ?? 60_000;
  }

  /** Loads state, creates the system accounts, reconciles with LND, and starts the background work. */
  async start(): Promise<void> {
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
    for (const r of await this.ledger.listRecords('pay!')) {
      const p = decodePayment(r.value);
      this.index(p);
      // Payments made before keys had their own records still answer their retries.
      // They match only a request of their own kind (the operation `pay` or `keysend` names).
      if (p.idempotencyKey) {
        const operation = p.kind === 'keysend' ? 'keysend' : 'pay';
        this.ledger.adoptIdempotencyKey(p.accountId, p.idempotencyKey, operation, p.id, p.createdAt);
      }
    }
    for (const r of await this.ledger.listRecords('inv!')) {
      const inv = decodeInvoice(r.value);
      this.invoices.set(inv.paymentHash, inv);
    }
    for (const r of await this.ledger.listRecords('appr!')) {
      const a = decodeApproval(r.value);
      this.approvals.set(a.id, a);
    }
    const intentPrefix = keys.cancelIntent('');
    for (const r of await this.ledger.listRecords(intentPrefix))
      this.cancelIntents.add(r.key.slice(intentPrefix.length));
    const info = await this.backend.getNodeInfo();
    this.nodePubkey = info.pubkey;
    this.network = info.network;
    await this.reconcile({ full: true });
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
  }

  stop(): void {
    this.stopped = true;
    this.stopBalanceEvents?.();
    this.stopBalanceEvents = undefined;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  // ---- paying -----------------------------------------------------------------------------

  async pay(accountId: string, input: PayInput): Promise<Payment> {
    const request = input.request.trim();
    return this.ledger.idempotent(
      {
        accountId,
        key: input.idempotencyKey,
        operation: 'pay',
        request: { request, amountMsat: input.amountMsat, maxFeeMsat: input.maxFeeMsat },
      },
      (records) => this.payOnce(accountId, { ...input, request }, records),
      (id) => this.replayPayment(id),
    );
  }

  private async payOnce(
    accountId: string,
    input: PayInput,
    idem: (id: string) => SideRecords,
  ): Promise<Payment> {
    await this.ledger.requireAccount(accountId);
    const decoded = await this.decode(input.request);
    const amount = this.amountOf(decoded, input.amountMsat);
    // ledger: from here to the reservation is one synchronous step on resident accounts.
    const ownPayee = this.invoices.get(decoded.paymentHash)?.accountId;
    await this.ledger.ensure({ accounts: [accountId, LIGHTNING_ACCOUNT, ...(ownPayee ? [ownPayee] : [])] });
    this.assertNotPaid(decoded.paymentHash, accountId);
    const earlier = this.byHash.get(decoded.paymentHash);
    const own = this.invoices.get(decoded.paymentHash);
    if (own) return this.payInternal(accountId, own, input, amount, idem);
    if (decoded.destination === this.nodePubkey) {
      throw new PaymentError(
        PaymentErrorCode.INVALID_INVOICE,
        'this invoice was issued by the gateway node but is not an account invoice',
      );
    }
    const feeLimit = input.maxFeeMsat ?? defaultFeeLimit(amount);
    const payment = this.newPayment(accountId, {
      kind: 'bolt11',
      paymentHash: decoded.paymentHash,
      request: input.request,
      destination: decoded.destination,
      amountMsat: amount,
      feeLimitMsat: feeLimit,
      ...(earlier && this.payments.get(earlier)?.status === 'failed' ? { retriesFailedHash: true } : {}),
      ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
    });
    const reserved = this.reserve(
      payment,
      {
        kind: 'bolt11',
        amountMsat: amount,
        feeLimitMsat: feeLimit,
        payee: { pubkey: decoded.destination },
      },
      idem(payment.id),
    );
    await reserved;
    if (payment.status === 'awaiting_approval') return publicPayment(payment);
    return this.send(payment);
  }

  async keysend(accountId: string, input: KeysendInput): Promise<Payment> {
    // Records are checked first: a type LND would wrap or refuse must never reserve anything.
    const problem = customRecordsProblem(input.records ?? []);
    if (problem !== undefined) throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, problem);
    return this.ledger.idempotent(
      {
        accountId,
        key: input.idempotencyKey,
        operation: 'keysend',
        request: {
          destination: input.destination,
          amountMsat: input.amountMsat,
          maxFeeMsat: input.maxFeeMsat,
          records: input.records ?? [],
        },
      },
      (records) => this.keysendOnce(accountId, input, records),
      (id) => this.replayPayment(id),
    );
  }

  private async keysendOnce(
    accountId: string,
    input: KeysendInput,
    idem: (id: string) => SideRecords,
  ): Promise<Payment> {
    await this.ledger.requireAccount(accountId);
    await this.ledger.ensure({ accounts: [accountId, LIGHTNING_ACCOUNT] });
    if (!isPubkey(input.destination))
      throw new PaymentError(
        PaymentErrorCode.INVALID_ARGUMENT,
        'destination must be a node public key (66 hex characters)',
      );
    if (input.amountMsat <= 0n)
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'amountMsat must be positive');
    if (input.destination === this.nodePubkey)
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'cannot keysend to the gateway node itself');
    const preimage = randomBytes(32).toString('hex');
    const paymentHash = paymentHashOf(preimage);
    const feeLimit = input.maxFeeMsat ?? defaultFeeLimit(input.amountMsat);
    const payment = this.newPayment(accountId, {
      kind: 'keysend',
      paymentHash,
      destination: input.destination,
      amountMsat: input.amountMsat,
      feeLimitMsat: feeLimit,
      keysendPreimage: preimage,
      ...(input.records?.length
        ? { records: input.records.map((r) => ({ type: r.type.toString(), value: r.value })) }
        : {}),
      ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
    });
    await this.reserve(
      payment,
      {
        kind: 'keysend',
        amountMsat: input.amountMsat,
        feeLimitMsat: feeLimit,
        payee: { pubkey: input.destination },
      },
      idem(payment.id),
    );
    if (payment.status === 'awaiting_approval') return publicPayment(payment);
    return this.send(payment);
  }

  /** Moves funds between two accounts of this gateway, within the payer's policy. */
  async transfer(
    fromAccountId: string,
    toAccountId: string,
    amount: Msat,
    memo: string,
    idempotencyKey?: string,
  ): Promise<{ transferId: string; replayed: boolean }> {
    return this.ledger.idempotent(
      {
        accountId: fromAccountId,
        key: idempotencyKey,
        operation: 'transfer',
        request: { toAccountId, amountMsat: amount, memo },
      },
      async (records) => {
        // A transfer made before this rule is known by the ledger's own key only.
        const ledgerKey = idempotencyKey ? `transfer:${fromAccountId}:${idempotencyKey}` : undefined;
        await this.ledger.ensure({
          accounts: [fromAccountId, toAccountId],
          ...(ledgerKey ? { keys: [ledgerKey] } : {}),
        });
        this.assertCreditable(toAccountId);
        const earlier = ledgerKey ? await this.ledger.findByIdempotencyKey(ledgerKey) : undefined;
        if (earlier) {
          if (earlier.creditAccountId !== toAccountId || earlier.amount !== amount)
            throw new PaymentError(
              PaymentErrorCode.IDEMPOTENCY_CONFLICT,
              'this idempotency key was used for a different transfer',
            );
          return { transferId: earlier.id, replayed: true };
        }
        const decision = this.decide(fromAccountId, {
          kind: 'internal_transfer',
          amountMsat: amount,
          feeLimitMsat: msat(0),
          payee: { accountId: toAccountId },
        });
        // Approvals exist for Lightning payments only; here "needs approval" is a refusal.
        if (decision.outcome !== 'allow') this.deny(decision);
        const id = randomUUID();
        const applied = this.ledger.transfer(
          {
            id,
            debitAccountId: fromAccountId,
            creditAccountId: toAccountId,
            amount,
            code: 'transfer',
            memo,
            ...(ledgerKey ? { idempotencyKey: ledgerKey } : {}),
          },
          records(id),
        );
        await applied.durable;
        return { transferId: applied.value.id, replayed: applied.replayed };
      },
      (transferId) => ({ transferId, replayed: true }),
    );
  }

  /**
   * Credits an account from the operator's funds (an allocation of the node's liquidity). Same
   * rule as transfers for who may be credited; idempotency keys are the operator's.
   */
  async fund(accountId: string, amount: Msat, idempotencyKey?: string): Promise<void> {
    await this.ledger.idempotent(
      {
        accountId: OPERATOR_ACCOUNT,
        key: idempotencyKey,
        operation: 'fund',
        request: { accountId, amountMsat: amount },
      },
      async (records) => {
        await this.ledger.ensure({
          accounts: [OPERATOR_ACCOUNT, accountId],
          ...(idempotencyKey ? { keys: [`fund:${accountId}:${idempotencyKey}`] } : {}),
        });
        this.assertCreditable(accountId);
        const id = randomUUID();
        await this.ledger.transfer(
          {
            id,
            debitAccountId: OPERATOR_ACCOUNT,
            creditAccountId: accountId,
            amount,
            code: 'funding',
            // The ledger's own key, as before this rule: a retry of an older funding is still recognised.
            ...(idempotencyKey ? { idempotencyKey: `fund:${accountId}:${idempotencyKey}` } : {}),
          },
          records(id),
        ).durable;
      },
      () => undefined,
    );
  }

  /**
   * Evaluates and audits the account's policy for a spend that another feature books itself
   * (a stream's prepaid chunk, an escrow lock). Throws PolicyDeniedError unless it is allowed;
   * the caller must reserve in the same tick, with no await in between.
   */
  authorizeSpend(accountId: string, req: SpendRequest): void {
    const decision = this.decide(accountId, req);
    if (decision.outcome !== 'allow') this.deny(decision);
  }

  /** The node this service pays from (known after start). */
  get nodeId(): string {
    return this.nodePubkey;
  }

  getPayment(id: string): Payment | undefined {
    const p = this.payments.get(id);
    return p ? publicPayment(p) : undefined;
  }

  listPayments(accountId: string, limit = 100): Payment[] {
    return [...this.payments.values()]
      .filter((p) => p.accountId === accountId)
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, limit)
      .map(publicPayment);
  }

  // ---- receiving --------------------------------------------------------------------------

  async createInvoice(
    accountId: string,
    input: { amountMsat: Msat; description?: string; expirySeconds?: number; idempotencyKey?: string },
  ): Promise<InvoiceRecord> {
    const { idempotencyKey, ...request } = input;
    return this.ledger.idempotent(
      { accountId, key: idempotencyKey, operation: 'invoice', request },
      (records) => this.createInvoiceOnce(accountId, request, records),
      (hash) => {
        const inv = this.invoices.get(hash);
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
    this.invoices.set(record.paymentHash, record);
    await this.ledger.putRecords([
      { key: keys.invoice(record.paymentHash), value: encode(record) },
      ...idem(record.paymentHash),
    ]);
    this.publishInvoice(record);
    return publicInvoice(record);
  }

  getInvoice(paymentHash: string): InvoiceRecord | undefined {
    const inv = this.invoices.get(paymentHash);
    return inv ? publicInvoice(inv) : undefined;
  }

  /**
   * Handles an invoice update from LND (subscription or reconciliation). Idempotent: the credit
   * carries the idempotency key `invoice:<hash>`, and the invoice record commits with it.
   */
  async onInvoice(invoice: Invoice): Promise<void> {
    const rec = this.invoices.get(invoice.paymentHash);
    if (!rec) return;
    if (invoice.state === 'canceled' && rec.state === 'open') {
      rec.state = 'canceled';
      await this.ledger.putRecords([{ key: keys.invoice(rec.paymentHash), value: encode(rec) }]);
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
   * credential's account, created on first credit. Not awaited for durability: if it is lost,
   * the credential's first use finds the invoice in LND instead.
   */
  registerServiceInvoice(record: InvoiceRecord): void {
    this.invoices.set(record.paymentHash, record);
    void this.ledger
      .putRecords([{ key: keys.invoice(record.paymentHash), value: encode(record) }])
      .catch((err: unknown) => this.log.warn({ err }, 'could not record a service invoice'));
  }

  /** Hot-path check for the L402 gate: has this invoice's credit been booked? */
  isInvoiceSettled(paymentHash: string): boolean {
    return this.invoices.get(paymentHash)?.state === 'settled';
  }

  /**
   * Credits an invoice whose payment is proven by its preimage (an L402 credential presented
   * before LND's settlement event arrived). Same idempotency key as the subscription's credit,
   * so whichever comes first credits, once.
   */
  async creditProvenPayment(
    paymentHash: string,
    fallback?: () => Promise<InvoiceRecord | undefined>,
  ): Promise<boolean> {
    let rec = this.invoices.get(paymentHash);
    if (!rec && fallback) {
      rec = await fallback();
      if (rec) this.invoices.set(paymentHash, rec);
    }
    if (!rec) return false;
    if (rec.state === 'settled') return true;
    if (rec.state === 'canceled') return false;
    await this.creditSettled(rec, rec.amountMsat, this.now());
    return true;
  }

  private async creditSettled(
    rec: InvoiceRecord,
    received: Msat,
    settledAt: number | undefined,
  ): Promise<void> {
    await this.ledger.ensure({
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
        [{ key: keys.invoice(rec.paymentHash), value: encode(settled) }],
      );
    } catch (err) {
      if (!(err instanceof LedgerError) || err.code !== LedgerErrorCode.BALANCE_LIMIT_EXCEEDED) throw err;
      return this.heldAboveCeiling(rec, settled, received);
    }
    Object.assign(rec, settled);
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
      [{ key: keys.invoice(rec.paymentHash), value: encode(held) }],
    );
    Object.assign(rec, held);
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
      [{ key: keys.invoice(rec.paymentHash), value: encode({ ...rec, lightningReceivedMsat: received }) }],
    );
    rec.lightningReceivedMsat = received;
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
  private completeCancel(hash: string): Promise<void> {
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
    const rec = this.invoices.get(hash);
    if (rec) rec.closedInLnd = true;
    await this.ledger.putRecords([
      { key: keys.cancelIntent(hash), value: null },
      ...(rec ? [{ key: keys.invoice(hash), value: encode(rec) }] : []),
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
  private async requestCancel(hash: string): Promise<void> {
    if (!this.cancelIntents.has(hash)) {
      await this.ledger.putRecords([{ key: keys.cancelIntent(hash), value: String(this.now()) }]);
      this.cancelIntents.add(hash);
    }
    await this.completeCancel(hash);
  }

  /** Accounts of L402 credentials come into being with their first credit. */
  private ensureCredentialAccount(accountId: string): void {
    if (accountId.startsWith('l402:') && !this.ledger.accountNow(accountId)) {
      this.ledger.createAccount({ id: accountId, kind: 'credential', name: accountId });
    }
  }

  // ---- approvals --------------------------------------------------------------------------

  listApprovals(state?: Approval['state']): Approval[] {
    return [...this.approvals.values()].filter((a) => !state || a.state === state).map((a) => ({ ...a }));
  }

  async approve(approvalId: string, by: string): Promise<Payment> {
    const asked = this.approvals.get(approvalId);
    if (asked) await this.ledger.ensure({ accounts: [asked.accountId, LIGHTNING_ACCOUNT] });
    const approval = this.pendingApproval(approvalId);
    const payment = this.mustPayment(approval.paymentId);
    const req: SpendRequest = {
      kind: payment.kind === 'keysend' ? 'keysend' : 'bolt11',
      amountMsat: payment.amountMsat,
      feeLimitMsat: payment.feeLimitMsat,
      payee: { pubkey: payment.destination },
    };
    // Release the hold and take the real reservation in the same tick: one atomic batch.
    const hold = this.ledger.getTransferSync(payment.reservationId);
    if (hold?.state === 'pending') this.ledger.void(hold.id, 'approved: replaced by reservation');
    const decision = this.decide(payment.accountId, req, true, payment.id);
    approval.state = decision.outcome === 'allow' ? 'approved' : 'denied';
    approval.decidedAt = this.now();
    approval.decidedBy = by;
    if (decision.outcome !== 'allow') {
      this.finish(payment, 'denied', { failureReason: 'APPROVAL_DENIED' });
      await this.ledger.putRecords([
        { key: keys.approval(approval.id), value: encode(approval) },
        { key: keys.payment(payment.id), value: encode(payment) },
      ]);
      this.deny(decision);
    }
    payment.status = 'pending';
    payment.reservationId = randomUUID();
    payment.updatedAt = this.now();
    const applied = this.reserveFunds(payment, [
      { key: keys.payment(payment.id), value: encode(payment) },
      { key: keys.approval(approval.id), value: encode(approval) },
    ]);
    await applied.durable;
    this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    return this.send(payment);
  }

  async denyApproval(approvalId: string, by: string): Promise<Payment> {
    const approval = this.pendingApproval(approvalId);
    return this.closeApproval(approval, 'denied', by);
  }

  /** Expires approvals whose time passed, releasing their holds. */
  async expireApprovals(): Promise<void> {
    const now = this.now();
    for (const a of this.approvals.values()) {
      if (a.state === 'pending' && a.expiresAt <= now) {
        await this.closeApproval(a, 'expired', 'system').catch((err: unknown) =>
          this.log.error({ err, approvalId: a.id }, 'could not expire an approval'),
        );
      }
    }
  }

  // ---- reconciliation ---------------------------------------------------------------------

  /**
   * Re-tracks every non-final payment (no age cut-off) and catches up on open invoices. A full
   * pass also checks every final Lightning payment against LND; on a mismatch the account is
   * frozen and an alert is raised.
   */
  async reconcile({ full }: { full: boolean }): Promise<{ checked: number; mismatches: number }> {
    let checked = 0;
    let mismatches = 0;
    // Cancels of internally settled invoices LND has not confirmed yet (lost to a crash or an outage).
    // One that fails stays for the next pass and holds none of the others (nor the start) up.
    for (const hash of [...this.cancelIntents])
      await this.completeCancel(hash).catch((err: unknown) =>
        this.log.warn({ err, hash }, 'could not complete the cancel of an internally paid invoice'),
      );
    for (const p of [...this.payments.values()]) {
      if (
        p.kind === 'internal' ||
        p.status === 'awaiting_approval' ||
        p.status === 'denied' ||
        p.status === 'expired'
      )
        continue;
      if (p.status !== 'pending' && !full) continue;
      // Only payments LND was asked to make, and only the latest attempt per hash: LND keeps one
      // record per hash, so an older attempt's final state cannot be compared with it.
      if (p.status !== 'pending' && (p.sentAt === undefined || this.byHash.get(p.paymentHash) !== p.id))
        continue;
      checked += 1;
      const lnd = await this.backend.trackPayment(p.paymentHash, { timeoutMs: 0 }).catch(() => undefined);
      if (!lnd) continue;
      if (p.status === 'pending') {
        await this.apply(p, lnd, true);
        if (this.payments.get(p.id)?.status === 'pending') this.track(p);
        continue;
      }
      const agrees =
        (p.status === 'succeeded' && lnd.status === 'succeeded') ||
        (p.status === 'failed' && (lnd.status === 'failed' || lnd.status === 'not_found'));
      if (!agrees) {
        mismatches += 1;
        this.log.error(
          { paymentId: p.id, ledger: p.status, lnd: lnd.status },
          'ledger and LND disagree about a payment',
        );
        await this.ledger.ensure({ accounts: [p.accountId] });
        await this.ledger.setFrozen(
          p.accountId,
          true,
          `reconciliation: payment ${p.id} is ${p.status} in the ledger but ${lnd.status} in LND`,
        ).durable;
        this.alert(
          p.accountId,
          'RECONCILIATION_MISMATCH',
          `payment ${p.id} is ${p.status} here but ${lnd.status} in LND; the account is frozen`,
        );
      }
    }
    for (const inv of [...this.invoices.values()]) {
      if (inv.state !== 'open') continue;
      const lnd = await this.backend.lookupInvoice(inv.paymentHash).catch(() => undefined);
      if (lnd && lnd.state !== 'open') await this.onInvoice(lnd);
    }
    // A full pass also checks every internally settled invoice LND could still accept a payment
    // for (not expired, not confirmed final in LND): one still open there is canceled, one paid is
    // a double payment.
    if (full) {
      const now = this.now();
      for (const inv of [...this.invoices.values()]) {
        if (
          inv.settledVia !== 'internal' ||
          inv.closedInLnd === true ||
          inv.expiresAt <= now ||
          this.cancelIntents.has(inv.paymentHash)
        )
          continue;
        const lnd = await this.backend.lookupInvoice(inv.paymentHash).catch(() => undefined);
        if (lnd?.state === 'settled') await this.onInvoice(lnd);
        else if (lnd?.state === 'open' || lnd?.state === 'accepted') {
          this.log.warn(
            { hash: inv.paymentHash },
            'an internally paid invoice was still open in LND; canceling',
          );
          await this.requestCancel(inv.paymentHash);
        }
      }
    }
    return { checked, mismatches };
  }

  /** What the gateway owes its accounts against what the node holds. */
  async liabilities(): Promise<Liabilities> {
    let owed = 0n;
    let pendingOut = 0n;
    // A page of accounts at a time from disk (they are not all in memory).
    for (let after: string | undefined; ;) {
      const page = await this.ledger.listAccounts({ limit: 1000, ...(after !== undefined ? { after } : {}) });
      for (const a of page) {
        if (a.kind === 'system' || a.kind === 'operator') continue;
        owed += balanceOf(a);
        pendingOut += a.debitsPending;
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.id;
    }
    const node = await this.backend.getBalances();
    const assets = node.channelLocalMsat + node.onchainConfirmedMsat;
    const coverage = owed === 0n ? 'inf' : (Number((assets * 10_000n) / owed) / 10_000).toFixed(4);
    return {
      accountsMsat: owed.toString(),
      pendingOutMsat: pendingOut.toString(),
      nodeChannelLocalMsat: node.channelLocalMsat.toString(),
      nodeOnchainMsat: node.onchainConfirmedMsat.toString(),
      coverage,
    };
  }

  // ---- internals --------------------------------------------------------------------------

  private replayPayment(id: string): Payment {
    const p = this.payments.get(id);
    if (!p) throw new PaymentError(PaymentErrorCode.PAYMENT_NOT_FOUND, `no payment ${id}`);
    return publicPayment(p);
  }

  /**
   * Who may be credited by a transfer or the operator's funding: accounts of agents, devices,
   * services and credentials, never the gateway's own (system and operator) accounts.
   */
  private assertCreditable(accountId: string): void {
    const a = this.ledger.accountNow(accountId);
    if (!a) throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${accountId}`);
    if (isGatewayAccount(accountId, a.kind))
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'cannot credit a system account');
  }

  private async decode(request: string): Promise<DecodedInvoice> {
    let decoded: DecodedInvoice;
    try {
      decoded = await this.backend.decodeInvoice(request);
    } catch (err) {
      if (err instanceof LightningError && err.code === LightningErrorCode.INVALID_REQUEST) {
        throw new PaymentError(PaymentErrorCode.INVALID_INVOICE, err.message);
      }
      throw err;
    }
    if (this.network && decoded.network !== this.network) {
      throw new PaymentError(
        PaymentErrorCode.NETWORK_MISMATCH,
        `the invoice is for ${decoded.network}, the gateway runs on ${this.network}`,
      );
    }
    if (decoded.isExpired)
      throw new PaymentError(PaymentErrorCode.INVOICE_EXPIRED, 'the invoice has expired');
    return decoded;
  }

  private amountOf(decoded: DecodedInvoice, given: Msat | undefined): Msat {
    if (decoded.amountMsat === 0n) {
      if (given === undefined || given <= 0n)
        throw new PaymentError(
          PaymentErrorCode.AMOUNT_REQUIRED,
          'the invoice has no amount: give amountMsat',
        );
      return given;
    }
    if (given !== undefined && given !== decoded.amountMsat) {
      throw new PaymentError(
        PaymentErrorCode.AMOUNT_MISMATCH,
        `amountMsat ${given} differs from the invoice amount ${decoded.amountMsat}`,
      );
    }
    return decoded.amountMsat;
  }

  /** One live attempt per payment hash: a pending or successful one blocks another. */
  private assertNotPaid(hash: string, accountId: string): void {
    const id = this.byHash.get(hash);
    const p = id ? this.payments.get(id) : undefined;
    // Another account's payment id is not this caller's business.
    const details = p && p.accountId === accountId ? { paymentId: p.id } : undefined;
    if (p?.status === 'succeeded')
      throw new PaymentError(PaymentErrorCode.ALREADY_PAID, 'this invoice is already paid', details);
    if (p?.status === 'pending' || p?.status === 'awaiting_approval') {
      throw new PaymentError(
        PaymentErrorCode.PAYMENT_IN_PROGRESS,
        'a payment of this invoice is in progress',
        details,
      );
    }
    const own = this.invoices.get(hash);
    if (own && own.state !== 'open')
      throw new PaymentError(PaymentErrorCode.ALREADY_PAID, `this invoice is ${own.state}`);
  }

  private newPayment(
    accountId: string,
    fields: Omit<Payment, 'id' | 'accountId' | 'status' | 'reservationId' | 'createdAt' | 'updatedAt'>,
  ): Payment {
    const now = this.now();
    return {
      id: randomUUID(),
      accountId,
      status: 'pending',
      reservationId: randomUUID(),
      createdAt: now,
      updatedAt: now,
      ...fields,
    };
  }

  private decide(accountId: string, req: SpendRequest, approved = false, paymentId?: string): Decision {
    const now = this.now();
    const decision = evaluate(
      this.policies.get(accountId),
      req,
      spendContext(this.ledger, accountId, now, approved),
    );
    this.audit.record(accountId, req, decision, now, paymentId);
    return decision;
  }

  private deny(decision: Decision): never {
    throw new PolicyDeniedError(decision as Decision & { code: NonNullable<Decision['code']> });
  }

  /**
   * Policy check and reservation of amount + fee limit, with no await in between: nothing can
   * spend the same funds or budget in the gap. Resolves once the reservation is durable.
   */
  private reserve(payment: Payment, req: SpendRequest, extra: SideRecords = []): Promise<void> {
    const decision = this.decide(payment.accountId, req, false, payment.id);
    if (decision.outcome === 'deny') this.deny(decision);
    const records: SideRecords = [...extra];
    let approval: Approval | undefined;
    if (decision.outcome === 'needs_approval') {
      approval = {
        id: randomUUID(),
        paymentId: payment.id,
        accountId: payment.accountId,
        amountMsat: payment.amountMsat,
        feeLimitMsat: payment.feeLimitMsat,
        reason: decision.reason ?? 'approval required',
        state: 'pending',
        createdAt: this.now(),
        expiresAt: this.now() + this.approvalTtlMs,
      };
      payment.status = 'awaiting_approval';
      payment.approvalId = approval.id;
      records.push({ key: keys.approval(approval.id), value: encode(approval) });
    }
    records.push(
      { key: keys.payment(payment.id), value: encode(payment) },
      { key: keys.paymentByHash(payment.paymentHash), value: payment.id },
    );
    const applied = this.reserveFunds(payment, records);
    // Only now that the reservation exists do the payment and its approval exist in memory.
    this.index(payment);
    if (approval) this.approvals.set(approval.id, approval);
    this.events.publish(payment.accountId, { type: 'payment', payment: publicPayment(payment) });
    if (approval) this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    return applied.durable;
  }

  /** The pending ledger transfer holding amount + fee limit of a payment, with its records. */
  private reserveFunds(payment: Payment, records: SideRecords): Applied<Transfer> {
    return this.ledger.transfer(
      {
        id: payment.reservationId,
        debitAccountId: payment.accountId,
        creditAccountId: LIGHTNING_ACCOUNT,
        amount: msat(payment.amountMsat + payment.feeLimitMsat),
        code: 'payment',
        memo: payment.paymentHash,
        pending: true,
      },
      records,
    );
  }

  private async send(payment: Payment): Promise<Payment> {
    let outcome: PaymentOutcome;
    // The not-found grace runs from here, not from creation (an approval may have waited long).
    payment.sentAt = this.now();
    try {
      outcome =
        payment.kind === 'keysend'
          ? await this.backend.keysend({
              destination: payment.destination,
              amountMsat: payment.amountMsat,
              maxFeeMsat: payment.feeLimitMsat,
              preimage: payment.keysendPreimage!,
              records: (payment.records ?? []).map((r) => ({ type: BigInt(r.type), value: r.value })),
              timeoutMs: this.payTimeoutMs,
            })
          : await this.backend.payInvoice({
              request: payment.request!,
              maxFeeMsat: payment.feeLimitMsat,
              timeoutMs: this.payTimeoutMs,
              ...(payment.amountMsat ? { amountMsat: payment.amountMsat } : {}),
            });
    } catch (err) {
      // Arguments refused before anything was sent are a definitive failure; anything else is unknown.
      const refused =
        err instanceof LightningError &&
        (err.code === LightningErrorCode.INVALID_ARGUMENT || err.code === LightningErrorCode.INVALID_REQUEST);
      outcome = refused
        ? {
            status: 'failed',
            paymentHash: payment.paymentHash,
            reason: 'INCORRECT_PAYMENT_DETAILS',
            message: err.message,
          }
        : { status: 'pending', paymentHash: payment.paymentHash };
      if (!refused) this.log.warn({ err, paymentId: payment.id }, 'payment outcome unknown; tracking');
    }
    await this.apply(payment, outcome);
    if (payment.status === 'pending') this.track(payment);
    return publicPayment(payment);
  }

  /** Applies what LND says to a pending payment: post, void, or leave pending. Idempotent. */
  private async apply(payment: Payment, outcome: PaymentOutcome, fromTracking = false): Promise<void> {
    if (payment.status !== 'pending') return;
    if (outcome.status === 'succeeded') {
      const total = msat(outcome.amountMsat + outcome.feeMsat);
      if (total > payment.amountMsat + payment.feeLimitMsat) {
        this.alert(
          payment.accountId,
          'PAID_MORE_THAN_RESERVED',
          `payment ${payment.id} cost ${total} msat, more than the ${payment.amountMsat + payment.feeLimitMsat} msat reserved; the difference is the operator's`,
        );
      }
      this.finish(payment, 'succeeded', { feeMsat: outcome.feeMsat, preimage: outcome.preimage });
      delete payment.keysendPreimage;
      const cap = msat(payment.amountMsat + payment.feeLimitMsat);
      await this.ledger.post(payment.reservationId, total > cap ? cap : total, [
        { key: keys.payment(payment.id), value: encode(payment) },
      ]).durable;
    } else if (outcome.status === 'failed') {
      // LND keeps one record per hash: right after a retry of a hash that failed before, the old
      // FAILED can still be what tracking sees. Believe it only once the grace has passed.
      if (
        fromTracking &&
        payment.retriesFailedHash &&
        this.now() - (payment.sentAt ?? payment.createdAt) <= this.notFoundGraceMs
      )
        return;
      this.finish(payment, 'failed', { failureReason: outcome.reason });
      await this.ledger.void(payment.reservationId, outcome.reason, [
        { key: keys.payment(payment.id), value: encode(payment) },
      ]).durable;
    } else if (
      outcome.status === 'not_found' &&
      this.now() - (payment.sentAt ?? payment.createdAt) > this.notFoundGraceMs
    ) {
      this.finish(payment, 'failed', { failureReason: 'NEVER_REACHED_LND' });
      await this.ledger.void(payment.reservationId, 'never reached LND', [
        { key: keys.payment(payment.id), value: encode(payment) },
      ]).durable;
    } else {
      return;
    }
    this.events.publish(payment.accountId, { type: 'payment', payment: publicPayment(payment) });
  }

  /** Follows a pending payment until LND says it is final (runs in the background). */
  private track(payment: Payment): void {
    if (this.tracking.has(payment.id) || this.stopped) return;
    this.tracking.add(payment.id);
    void (async () => {
      try {
        while (!this.stopped && payment.status === 'pending') {
          const outcome = await this.backend
            .trackPayment(payment.paymentHash, { timeoutMs: 60_000 })
            .catch(() => undefined);
          if (outcome) await this.apply(payment, outcome, true);
          if (payment.status === 'pending')
            await new Promise((r) => setTimeout(r, outcome?.status === 'not_found' ? 1000 : 2000).unref());
        }
      } catch (err) {
        this.log.error({ err, paymentId: payment.id }, 'tracking a payment failed');
      } finally {
        this.tracking.delete(payment.id);
      }
    })();
  }

  private async payInternal(
    accountId: string,
    inv: InvoiceRecord,
    input: PayInput,
    amount: Msat,
    idem: (id: string) => SideRecords,
  ): Promise<Payment> {
    if (inv.accountId === accountId)
      throw new PaymentError(PaymentErrorCode.OWN_INVOICE, 'an account cannot pay its own invoice');
    if (amount !== inv.amountMsat)
      throw new PaymentError(PaymentErrorCode.AMOUNT_MISMATCH, 'internal invoices are paid in full');
    const payment = this.newPayment(accountId, {
      kind: 'internal',
      paymentHash: inv.paymentHash,
      request: inv.request,
      destination: this.nodePubkey,
      amountMsat: amount,
      feeLimitMsat: msat(0),
      payeeAccountId: inv.accountId,
      ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
    });
    const decision = this.decide(
      accountId,
      {
        kind: 'bolt11',
        amountMsat: amount,
        feeLimitMsat: msat(0),
        payee: { pubkey: this.nodePubkey, accountId: inv.accountId },
      },
      false,
      payment.id,
    );
    if (decision.outcome !== 'allow') this.deny(decision);
    this.ensureCredentialAccount(inv.accountId);
    payment.status = 'succeeded';
    payment.feeMsat = msat(0);
    if (inv.preimage) payment.preimage = inv.preimage;
    // The invoice changes only if the transfer goes through (it can still fail on funds).
    const settled: InvoiceRecord = {
      ...inv,
      state: 'settled',
      settledVia: 'internal',
      receivedMsat: amount,
      settledAt: this.now(),
    };
    const applied = this.ledger.transfer(
      {
        id: payment.reservationId,
        debitAccountId: accountId,
        creditAccountId: inv.accountId,
        amount,
        code: 'internal_payment',
        memo: inv.paymentHash,
      },
      [
        { key: keys.payment(payment.id), value: encode(payment) },
        { key: keys.paymentByHash(payment.paymentHash), value: payment.id },
        { key: keys.invoice(inv.paymentHash), value: encode(settled) },
        ...idem(payment.id),
        // The LND invoice must not be paid again from outside: the intent to cancel it is durable
        // with the settlement, completed now, and retried by reconciliation and after a restart.
        { key: keys.cancelIntent(inv.paymentHash), value: String(this.now()) },
      ],
    );
    Object.assign(inv, settled);
    this.index(payment);
    await applied.durable;
    this.cancelIntents.add(inv.paymentHash);
    void this.completeCancel(inv.paymentHash).catch((err: unknown) =>
      this.log.warn({ err, hash: inv.paymentHash }, 'could not cancel an internally paid invoice'),
    );
    this.events.publish(accountId, { type: 'payment', payment: publicPayment(payment) });
    this.publishInvoice(inv);
    return publicPayment(payment);
  }

  private async closeApproval(approval: Approval, state: 'denied' | 'expired', by: string): Promise<Payment> {
    const payment = this.mustPayment(approval.paymentId);
    approval.state = state;
    approval.decidedAt = this.now();
    approval.decidedBy = by;
    this.finish(payment, state, {
      failureReason: state === 'denied' ? 'APPROVAL_DENIED' : 'APPROVAL_EXPIRED',
    });
    const records: SideRecords = [
      { key: keys.approval(approval.id), value: encode(approval) },
      { key: keys.payment(payment.id), value: encode(payment) },
    ];
    const hold = this.ledger.getTransferSync(payment.reservationId);
    if (hold?.state === 'pending') await this.ledger.void(hold.id, `approval ${state}`, records).durable;
    else await this.ledger.putRecords(records);
    this.events.publish(payment.accountId, { type: 'approval', approval: { ...approval } });
    this.events.publish(payment.accountId, { type: 'payment', payment: publicPayment(payment) });
    return publicPayment(payment);
  }

  private pendingApproval(id: string): Approval {
    const a = this.approvals.get(id);
    if (!a) throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_FOUND, `no approval ${id}`);
    if (a.state !== 'pending')
      throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} is ${a.state}`);
    if (a.expiresAt <= this.now())
      throw new PaymentError(PaymentErrorCode.APPROVAL_NOT_PENDING, `approval ${id} has expired`);
    return a;
  }

  private mustPayment(id: string): Payment {
    const p = this.payments.get(id);
    if (!p) throw new PaymentError(PaymentErrorCode.PAYMENT_NOT_FOUND, `no payment ${id}`);
    return p;
  }

  private finish(payment: Payment, status: Payment['status'], fields: Partial<Payment>): void {
    Object.assign(payment, fields);
    payment.status = status;
    payment.updatedAt = this.now();
  }

  private index(p: Payment): void {
    this.payments.set(p.id, p);
    this.byHash.set(p.paymentHash, p.id);
  }

  private publishInvoice(inv: InvoiceRecord): void {
    this.events.publish(inv.accountId, { type: 'invoice', invoice: publicInvoice(inv) });
  }

  private alert(accountId: string, code: string, message: string): void {
    this.log.warn({ accountId, code }, message);
    this.events.publish(accountId, { type: 'alert', accountId, code, message });
  }
}

/** A payment as callers and events see it: never the keysend preimage we hold while in flight. */
function publicPayment(p: Payment): Payment {
  const copy = { ...p };
  delete copy.keysendPreimage;
  return copy;
}

function publicInvoice(inv: InvoiceRecord): InvoiceRecord {
  const copy = { ...inv };
  delete copy.preimage;
  delete copy.closedInLnd;
  return copy;
}
