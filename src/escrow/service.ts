import { KeyedQueue } from '../domain/keyed-queue.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { paymentHashOf, provesPayment } from '../domain/hex.js';
import { type Msat } from '../domain/msat.js';
import type { Applied, Ledger, SideRecords } from '../ledger/ledger.js';
import type { Transfer } from '../ledger/types.js';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import { LightningError, LightningErrorCode } from '../lightning/errors.js';
import type { LightningBackend } from '../lightning/backend.js';
import type { Invoice, Subscription } from '../lightning/types.js';
import type { Logger } from '../domain/logger.js';
import { LIGHTNING_ACCOUNT } from '../ledger/system-accounts.js';
import { type PaymentsService } from '../payments/service.js';
import {
  BLOCK_TIME_MS,
  DEFAULT_ESCROW_CLTV,
  DEFAULT_SAFETY_BLOCKS,
  MAX_WALLET_CLTV,
  maxHoldMs,
  MIN_ESCROW_CLTV,
  mustCancel,
} from './cltv.js';
import { BoundedCache } from '../domain/lru.js';
import {
  escrowIndex,
  FINAL_STATES as FINAL,
  publicEscrow,
  receiptKeyKey,
  receiptKeysPrefix,
} from './codec.js';
import { IndexedItems } from '../ledger/record-index.js';
import { EscrowError, EscrowErrorCode } from './errors.js';
import { isXOnlyKey, verifyReceipt } from './receipt.js';
import type { Actor, CreateEscrowInput, Escrow, Receipt } from './types.js';
import { askVerifier, VERIFIER_FAILED_MESSAGE } from './verifier.js';
import { OutboundGuard } from '../net/outbound.js';

/**
 * Holds the funds of account-funded escrows between lock and release, and the settled amount of a
 * Lightning-funded escrow whose payee could not take it yet (see `heldTransferId`).
 */
export const ESCROW_ACCOUNT = 'sys:escrow';

/** The transfer that books a settled HTLC in sys:escrow when the payee's credit was refused. */
const heldTransferId = (escrowId: string): string => `escrow-held:${escrowId}`;

export interface EscrowOptions {
  now?: () => number;
  /** How often the chain height is checked while Lightning escrows are funded. */
  blockPollMs?: number;
  /** Blocks before LND's own hold expiry at which we cancel. */
  safetyBlocks?: number;
  /** Expected block interval, to fit wall-clock deadlines inside the CLTV budget. */
  blockTimeMs?: number;
  defaultTimeoutSeconds?: number;
  /** The rule for the verifier URLs of webhook conditions (default: public addresses only). */
  outbound?: OutboundGuard;
}

export type EscrowEvent = { type: 'escrow'; escrow: Escrow };

/**
 * Conditional payments on hold invoices (or on locked account balance): every transition is
 * persisted before and after the LND call it needs, repeated calls are harmless, and watches,
 * deadlines and the CLTV safety cancel resume after a restart.
 */
export class EscrowService {
  /** Open escrows (what the sweeps and watches work on) and a cache of closed ones. */
  private readonly escrows: IndexedItems<Escrow>;
  /** Receipt keys of recently used accounts (the rest are read from disk when needed). */
  private readonly receiptKeys: BoundedCache<string, Set<string>>;
  private readonly watches = new Map<string, Subscription>();
  private readonly queue = new KeyedQueue();
  private timers: NodeJS.Timeout[] = [];
  private readonly now: () => number;
  private readonly safetyBlocks: number;
  private readonly blockTimeMs: number;
  private readonly blockPollMs: number;
  private readonly defaultTimeoutSeconds: number;
  private readonly outbound: OutboundGuard;
  private stopped = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly backend: LightningBackend,
    private readonly payments: PaymentsService,
    private readonly publish: (accountId: string, event: EscrowEvent) => void,
    private readonly log: Logger,
    options: EscrowOptions = {},
  ) {
    this.escrows = new IndexedItems(escrowIndex, ledger);
    this.now = options.now ?? Date.now;
    this.receiptKeys = new BoundedCache(10_000, this.now);
    this.safetyBlocks = options.safetyBlocks ?? DEFAULT_SAFETY_BLOCKS;
    this.blockTimeMs = options.blockTimeMs ?? BLOCK_TIME_MS;
    this.blockPollMs = options.blockPollMs ?? 5_000;
    this.defaultTimeoutSeconds = options.defaultTimeoutSeconds ?? 3600;
    this.outbound = options.outbound ?? new OutboundGuard();
  }

  async start(): Promise<void> {
    await this.load();
    this.startDuties();
  }

  /** The escrow account and the open escrows: what every instance needs to serve requests. */
  async load(): Promise<void> {
    if (!(await this.ledger.getAccount(ESCROW_ACCOUNT)))
      await this.ledger.createAccount({ id: ESCROW_ACCOUNT, kind: 'system', name: ESCROW_ACCOUNT }).durable;
    // Only open escrows are loaded; closed ones stay on disk until someone asks for them.
    await this.escrows.load();
  }

  /**
   * The leader's part: watching the hold invoices of open escrows, resuming interrupted releases
   * and refunds, and the deadline, block-height and release sweeps.
   */
  startDuties(): void {
    for (const e of this.escrows.values()) {
      if (e.funding === 'lightning') this.watch(e);
      if (e.state === 'releasing')
        void this.run(e.id, () => this.release(e, e.reason ?? 'resumed')).catch((err: unknown) =>
          this.log.error({ err, escrowId: e.id }, 'resuming an escrow release failed; retrying'),
        );
      if (e.state === 'refunding')
        void this.run(e.id, () => this.refund(e, e.reason ?? 'resumed')).catch((err: unknown) =>
          this.log.error({ err, escrowId: e.id }, 'resuming an escrow refund failed; the sweep retries'),
        );
    }
    const every = (ms: number, fn: () => Promise<void>): void => {
      const t = setInterval(
        () => void fn().catch((err: unknown) => this.log.error({ err }, 'escrow sweep failed')),
        ms,
      );
      t.unref();
      this.timers.push(t);
    };
    every(1000, () => this.sweepDeadlines());
    every(this.blockPollMs, () => this.sweepHeights());
    every(this.blockPollMs, () => this.sweepReleasing());
  }

  stop(): void {
    this.stopped = true;
    this.stopDuties();
  }

  stopDuties(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
  }

  // ---- creating and funding -------------------------------------------------------------

  /**
   * `sideRecords(escrowId)`: records of the caller's (a task and its idempotency key, say) to
   * commit in the same atomic batch as the escrow (for account funding, the batch that locks the
   * amount), so that the escrow never exists without them.
   */
  async create(
    payerAccountId: string,
    input: CreateEscrowInput,
    sideRecords?: (escrowId: string) => SideRecords,
  ): Promise<Escrow> {
    const { idempotencyKey, ...request } = input;
    return this.ledger.idempotent(
      { accountId: payerAccountId, key: idempotencyKey, operation: 'escrow', request },
      (records) =>
        this.createOnce(payerAccountId, request, (id) => [...records(id), ...(sideRecords?.(id) ?? [])]),
      async (id) => publicEscrow(await this.must(id)),
    );
  }

  private async createOnce(
    payerAccountId: string,
    input: CreateEscrowInput,
    idem: (id: string) => SideRecords,
  ): Promise<Escrow> {
    const payer = await this.ledger.requireAccount(payerAccountId);
    if (payer.kind === 'system')
      throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'system accounts cannot hold escrows');
    if (input.amountMsat <= 0n)
      throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'amountMsat must be positive');
    if (input.payeeAccountId !== undefined) await this.assertPayee(payerAccountId, input.payeeAccountId);
    const condition = input.condition;
    if (condition.type === 'preimage' && !/^[0-9a-f]{64}$/.test(condition.paymentHash))
      throw new EscrowError(
        EscrowErrorCode.INVALID_ARGUMENT,
        'paymentHash must be 64 lowercase hex characters',
      );
    if (condition.type === 'webhook') {
      this.outbound.checkUrl(condition.url);
      if (!Number.isInteger(condition.timeoutMs) || condition.timeoutMs < 100 || condition.timeoutMs > 60_000)
        throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'timeoutMs must be between 100 and 60000');
    }
    const funding = input.funding ?? 'lightning';
    if (funding === 'account' && condition.type === 'preimage')
      throw new EscrowError(
        EscrowErrorCode.INVALID_ARGUMENT,
        'a preimage condition needs Lightning funding (the payee’s hash locks the HTLC)',
      );
    const cltvDelta = input.cltvDelta ?? DEFAULT_ESCROW_CLTV;
    if (!Number.isInteger(cltvDelta) || cltvDelta < MIN_ESCROW_CLTV || cltvDelta > MAX_WALLET_CLTV)
      throw new EscrowError(
        EscrowErrorCode.INVALID_ARGUMENT,
        `cltvDelta must be between ${MIN_ESCROW_CLTV} and ${MAX_WALLET_CLTV} blocks`,
      );
    const timeoutSeconds = input.timeoutSeconds ?? this.defaultTimeoutSeconds;
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1)
      throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'timeoutSeconds must be a positive integer');
    const budget = maxHoldMs(cltvDelta, this.safetyBlocks, this.blockTimeMs);
    if (funding === 'lightning' && timeoutSeconds * 1000 > budget)
      throw new EscrowError(
        EscrowErrorCode.DEADLINE_TOO_FAR,
        `a ${cltvDelta}-block hold can safely last ${Math.floor(budget / 1000)} s; raise cltvDelta or shorten the deadline`,
      );
    const now = this.now();
    const preimage = condition.type === 'preimage' ? undefined : randomBytes(32).toString('hex');
    const paymentHash = condition.type === 'preimage' ? condition.paymentHash : paymentHashOf(preimage!);
    const e: Escrow = {
      id: randomUUID(),
      payerAccountId,
      ...(input.payeeAccountId !== undefined ? { payeeAccountId: input.payeeAccountId } : {}),
      amountMsat: input.amountMsat,
      description: input.description ?? '',
      condition,
      funding,
      state: 'open',
      paymentHash,
      ...(preimage ? { preimage } : {}),
      cltvDelta,
      deadline: now + timeoutSeconds * 1000,
      ...(input.payoutRequest ? { payoutRequest: input.payoutRequest } : {}),
      createdAt: now,
      updatedAt: now,
    };
    if (funding === 'account') {
      await this.lock(e, payerAccountId, idem(e.id));
      return publicEscrow(e);
    }
    const invoice = await this.backend.createHoldInvoice({
      paymentHash,
      amountMsat: input.amountMsat,
      description: e.description || `escrow ${e.id}`,
      expirySeconds: timeoutSeconds,
      cltvDelta,
    });
    if (invoice.request) e.request = invoice.request;
    this.escrows.remember(e);
    await this.save(e, idem(e.id));
    this.watch(e);
    this.emit(e);
    return publicEscrow(e);
  }

  /** Funds an open escrow from the payer's balance (within its policy) instead of over Lightning. */
  fundFromAccount(escrowId: string, actor: Actor): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      const payer = actor.type === 'operator' ? e.payerAccountId : actor.accountId;
      if (payer !== e.payerAccountId) this.forbidden('only the payer funds an escrow');
      if (e.state !== 'open') this.wrongState(e, 'fund');
      if (e.condition.type === 'preimage')
        throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'a preimage escrow is funded over Lightning');
      const hadInvoice = e.funding === 'lightning';
      await this.lock(e, payer);
      this.closeWatch(e.id);
      // The hold invoice must not be paid as well; a payment racing in is canceled (refunded).
      if (hadInvoice)
        void this.backend
          .cancelHoldInvoice(e.paymentHash)
          .catch((err: unknown) =>
            this.log.warn({ err, escrowId: e.id }, 'could not cancel the hold invoice'),
          );
      return publicEscrow(e);
    });
  }

  /** Names the payee of an escrow created without one (a task's reward, once an agent claims it). */
  assignPayee(escrowId: string, payeeAccountId: string): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      if (FINAL.has(e.state)) this.wrongState(e, 'assign a payee to');
      if (e.payeeAccountId !== undefined && e.payeeAccountId !== payeeAccountId)
        throw new EscrowError(EscrowErrorCode.INVALID_STATE, 'this escrow already has a payee');
      await this.assertPayee(e.payerAccountId, payeeAccountId);
      e.payeeAccountId = payeeAccountId;
      await this.save(e);
      this.emit(e);
      return publicEscrow(e);
    });
  }

  // ---- conditions ---------------------------------------------------------------------------

  approve(escrowId: string, actor: Actor): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      this.assertCondition(e, 'approval');
      if (actor.type === 'account' && actor.accountId !== e.payerAccountId)
        this.forbidden('only the payer or the operator approves the release');
      return this.release(e, 'approved');
    });
  }

  submitPreimage(escrowId: string, actor: Actor, preimage: string): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      this.assertCondition(e, 'preimage');
      this.assertPayeeActor(e, actor);
      if (!provesPayment(preimage, e.paymentHash))
        throw new EscrowError(EscrowErrorCode.INVALID_PROOF, 'the preimage does not match the payment hash');
      if (e.state !== 'funded' && e.state !== 'releasing') this.wrongState(e, 'release');
      e.preimage = preimage;
      return this.release(e, 'preimage');
    });
  }

  submitReceipt(escrowId: string, actor: Actor, receipt: Receipt): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      this.assertCondition(e, 'receipt');
      this.assertPayeeActor(e, actor);
      if (receipt.payload.length > 1024)
        throw new EscrowError(
          EscrowErrorCode.INVALID_ARGUMENT,
          'the receipt payload is limited to 1024 characters',
        );
      const keys = await this.keysOf(e.payeeAccountId!);
      const valid = [...keys].some((k) =>
        verifyReceipt(k, e.id, e.paymentHash, receipt.payload, receipt.signature),
      );
      if (!valid)
        throw new EscrowError(
          EscrowErrorCode.INVALID_PROOF,
          'the receipt is not signed by a receipt key registered for the payee',
        );
      return this.release(e, 'receipt');
    });
  }

  /** Asks the escrow's external verifier; `true` releases, `false` refunds, an error decides nothing. */
  verify(escrowId: string, actor: Actor, evidence: unknown): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      this.assertCondition(e, 'webhook');
      this.assertPayeeActor(e, actor);
      if (e.state !== 'funded') this.wrongState(e, 'verify');
      const c = e.condition as Extract<Escrow['condition'], { type: 'webhook' }>;
      const answer = await askVerifier(this.outbound, c.url, c.timeoutMs, {
        escrowId: e.id,
        paymentHash: e.paymentHash,
        amountMsat: e.amountMsat.toString(),
        payeeAccountId: e.payeeAccountId!,
        evidence,
      });
      if (!answer.ok) {
        // The reason (refused address, status, timeout...) stays in the log: telling the caller
        // would make the gateway a port scanner.
        this.log.warn({ escrowId: e.id, reason: answer.reason }, 'the escrow verifier gave no decision');
        e.verifierError = VERIFIER_FAILED_MESSAGE;
        await this.save(e);
        throw new EscrowError(EscrowErrorCode.VERIFIER_FAILED, VERIFIER_FAILED_MESSAGE);
      }
      const release = answer.release;
      delete e.verifierError;
      return release ? this.release(e, 'verifier_approved') : this.refund(e, 'verifier_rejected');
    });
  }

  /** The payee gives the money back, the payer cancels an unfunded escrow, or the operator decides. */
  cancel(escrowId: string, actor: Actor, reason = 'canceled'): Promise<Escrow> {
    return this.run(escrowId, async () => {
      const e = await this.must(escrowId);
      const role = this.roleOf(e, actor);
      if (role === 'payer' && e.state !== 'open')
        this.forbidden('a funded escrow is refunded by the payee, the deadline or the operator');
      if (role === 'none') this.forbidden('not a party to this escrow');
      return this.refund(e, reason);
    });
  }

  /** Trusted callers (the task market, the operator's dispute resolution). */
  releaseNow(escrowId: string, reason: string): Promise<Escrow> {
    return this.run(escrowId, async () => this.release(await this.must(escrowId), reason));
  }

  refundNow(escrowId: string, reason: string): Promise<Escrow> {
    return this.run(escrowId, async () => this.refund(await this.must(escrowId), reason));
  }

  // ---- receipt keys ---------------------------------------------------------------------------

  async registerReceiptKey(accountId: string, pubkey: string): Promise<void> {
    await this.ledger.requireAccount(accountId);
    if (!isXOnlyKey(pubkey))
      throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'pubkey must be a BIP340 x-only key (64 hex)');
    await this.ledger.putRecords([{ key: receiptKeyKey(accountId, pubkey), value: '1' }]);
    (await this.keysOf(accountId)).add(pubkey);
  }

  async removeReceiptKey(accountId: string, pubkey: string): Promise<void> {
    await this.ledger.putRecords([{ key: receiptKeyKey(accountId, pubkey), value: null }]);
    (await this.keysOf(accountId)).delete(pubkey);
  }

  async listReceiptKeys(accountId: string): Promise<string[]> {
    return [...(await this.keysOf(accountId))];
  }

  // ---- reading --------------------------------------------------------------------------------

  /** How many escrows are in memory: every open one, and a bounded cache of closed ones. */
  stats(): { open: number; closedInMemory: number } {
    return this.escrows.stats();
  }

  async get(escrowId: string, actor?: Actor): Promise<Escrow> {
    const e = await this.must(escrowId);
    if (actor && this.roleOf(e, actor) === 'none') this.notFound(escrowId);
    return publicEscrow(e);
  }

  /**
   * An account's escrows (as payer or payee), or all of them, newest first, a page at a time:
   * `next` is the cursor of the following page (pass it as `before`).
   */
  async list(
    accountId?: string,
    page: { limit?: number; before?: string } = {},
  ): Promise<{ escrows: Escrow[]; next?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const { entries, next } = await escrowIndex.page(this.ledger, accountId, limit, page.before);
    const escrows: Escrow[] = [];
    for (const { id } of entries) {
      const e = await this.escrows.peek(id);
      if (e) escrows.push(publicEscrow(e));
    }
    return { escrows, ...(next ? { next } : {}) };
  }

  // ---- transitions ----------------------------------------------------------------------------

  /** Locks the amount on the payer's account (policy first, in the same tick). */
  private async lock(e: Escrow, payerAccountId: string, extra: SideRecords = []): Promise<void> {
    await this.payments.prepare([payerAccountId], [ESCROW_ACCOUNT]);
    this.payments.authorizeSpend(payerAccountId, {
      kind: 'escrow',
      amountMsat: e.amountMsat,
      feeLimitMsat: 0n as Msat,
      payee: e.payeeAccountId !== undefined ? { accountId: e.payeeAccountId } : {},
    });
    const now = this.now();
    const next: Escrow = {
      ...e,
      funding: 'account',
      state: 'funded',
      lockTransferId: `escrow:${e.id}`,
      fundedAt: now,
      updatedAt: now,
    };
    delete next.request;
    const applied = this.ledger.transfer(
      {
        id: next.lockTransferId!,
        debitAccountId: payerAccountId,
        creditAccountId: ESCROW_ACCOUNT,
        amount: e.amountMsat,
        code: 'escrow',
        memo: e.id,
        pending: true,
      },
      [...escrowIndex.records(next), ...extra],
    );
    Object.assign(e, next);
    delete e.request;
    this.escrows.remember(e);
    await applied.durable;
    this.emit(e);
  }

  private async release(e: Escrow, reason: string): Promise<Escrow> {
    if (e.state === 'released') return publicEscrow(e);
    if (e.state !== 'funded' && e.state !== 'releasing') this.wrongState(e, 'release');
    if (e.payeeAccountId === undefined)
      throw new EscrowError(EscrowErrorCode.NO_PAYEE, 'this escrow has no payee yet');
    const payee = e.payeeAccountId;
    await this.ledger.requireAccount(payee);
    const needs = {
      spend: [ESCROW_ACCOUNT],
      accounts: [payee, LIGHTNING_ACCOUNT],
      keys: [`escrow-release:${e.id}`],
    };
    await this.ledger.ensure(needs);
    if (e.funding === 'account') {
      // Checked before the lock is posted (same tick): a payee that cannot take the amount
      // refuses the release (409 BALANCE_LIMIT_EXCEEDED) and the escrow stays funded.
      this.ledger.assertCanCredit(payee, e.amountMsat);
      const released = this.finished(e, 'released', reason);
      // Both moves apply in this tick, so they are written in one batch with the record.
      this.ledger.post(e.lockTransferId!);
      const applied = this.creditPayee(e, ESCROW_ACCOUNT, payee, released);
      Object.assign(e, released);
      this.escrows.remember(e);
      await applied.durable;
    } else {
      if (e.state !== 'releasing') {
        // Before the HTLC is settled (irreversible): a payee that cannot take the amount refuses
        // the release (409 BALANCE_LIMIT_EXCEEDED) and the escrow stays funded.
        this.ledger.assertCanCredit(payee, e.amountMsat);
        e.state = 'releasing';
        e.reason = reason;
        e.updatedAt = this.now();
        await this.save(e);
      }
      // Money settled earlier whose credit the payee could not take waits in sys:escrow.
      const held = await this.ledger.getTransfer(heldTransferId(e.id));
      if (!held) {
        const outcome = await this.settle(e);
        if (outcome === 'canceled') {
          await this.markRefunded(e, 'htlc_canceled_before_release');
          throw new EscrowError(
            EscrowErrorCode.INVALID_STATE,
            'the payment was canceled (by LND or the payer) before it could be released; refunded',
          );
        }
      }
      const released = this.finished(e, 'released', reason);
      await this.ledger.ensure(needs);
      let applied: Applied<Transfer>;
      try {
        applied = this.creditPayee(e, held ? ESCROW_ACCOUNT : LIGHTNING_ACCOUNT, payee, released);
      } catch (err) {
        if (!(err instanceof LedgerError && err.code === LedgerErrorCode.BALANCE_LIMIT_EXCEEDED)) throw err;
        // The HTLC is settled: the money is ours and must be booked. The payee took other
        // credits while LND settled; the amount waits in sys:escrow and the release is retried
        // (sweepReleasing, restarts) until the payee has room for it.
        if (!held) {
          await this.ledger.transfer({
            id: heldTransferId(e.id),
            debitAccountId: LIGHTNING_ACCOUNT,
            creditAccountId: ESCROW_ACCOUNT,
            amount: e.amountMsat,
            code: 'escrow_held',
            memo: e.id,
          }).durable;
          this.log.error(
            { escrowId: e.id, payeeAccountId: payee, amountMsat: e.amountMsat.toString() },
            'a settled escrow cannot be credited to its payee (balance ceiling); held in sys:escrow, retrying',
          );
        }
        throw err;
      }
      Object.assign(e, released);
      this.escrows.remember(e);
      this.closeWatch(e.id);
      await applied.durable;
    }
    this.emit(e);
    if (e.payoutRequest && !e.payoutPaymentId) void this.payout(e);
    return publicEscrow(e);
  }

  /** The release's credit to the payee, once (its key), in one batch with the released record. */
  private creditPayee(e: Escrow, from: string, payee: string, released: Escrow): Applied<Transfer> {
    return this.ledger.transfer(
      {
        debitAccountId: from,
        creditAccountId: payee,
        amount: e.amountMsat,
        code: 'escrow_release',
        memo: e.id,
        idempotencyKey: `escrow-release:${e.id}`,
      },
      escrowIndex.records(released),
    );
  }

  /** Settles the hold invoice; true state comes from LND, so a repeated settle is harmless. */
  private async settle(e: Escrow): Promise<'settled' | 'canceled'> {
    const before = await this.backend.lookupInvoice(e.paymentHash);
    if (before.state === 'settled') return 'settled';
    if (before.state === 'canceled') return 'canceled';
    if (before.state !== 'accepted')
      throw new EscrowError(EscrowErrorCode.INVALID_STATE, 'the hold invoice holds no payment');
    try {
      await this.backend.settleHoldInvoice(e.preimage!);
    } catch (err) {
      const after = await this.backend.lookupInvoice(e.paymentHash);
      if (after.state === 'settled') return 'settled';
      if (after.state === 'canceled') return 'canceled';
      throw err;
    }
    return 'settled';
  }

  private async refund(e: Escrow, reason: string): Promise<Escrow> {
    if (e.state === 'refunded' || e.state === 'expired') return publicEscrow(e);
    if (e.state === 'released' || e.state === 'releasing') this.wrongState(e, 'refund');
    if (e.funding === 'account') {
      const refunded = this.finished(e, 'refunded', reason);
      const applied = this.ledger.void(e.lockTransferId!, reason, escrowIndex.records(refunded));
      Object.assign(e, refunded);
      this.escrows.remember(e);
      await applied.durable;
      this.emit(e);
      return publicEscrow(e);
    }
    if (e.state !== 'refunding') {
      e.reason = reason;
      e.state = e.state === 'open' ? 'open' : 'refunding';
      e.updatedAt = this.now();
      await this.save(e);
    }
    try {
      await this.backend.cancelHoldInvoice(e.paymentHash);
    } catch (err) {
      const now = await this.backend.lookupInvoice(e.paymentHash).catch(() => undefined);
      if (now?.state !== 'canceled') {
        if (!(err instanceof LightningError && err.code === LightningErrorCode.INVOICE_NOT_FOUND)) throw err;
      }
    }
    await this.markRefunded(e, reason);
    return publicEscrow(e);
  }

  private async markRefunded(e: Escrow, reason: string): Promise<void> {
    if (FINAL.has(e.state)) return;
    const unfunded = e.state === 'open';
    Object.assign(e, this.finished(e, unfunded ? 'expired' : 'refunded', reason));
    this.closeWatch(e.id);
    await this.save(e);
    this.emit(e);
  }

  private finished(e: Escrow, state: 'released' | 'refunded' | 'expired', reason: string): Escrow {
    const now = this.now();
    return { ...e, state, reason, resolvedAt: now, updatedAt: now };
  }

  private async payout(e: Escrow): Promise<void> {
    try {
      const p = await this.payments.pay(e.payeeAccountId!, { request: e.payoutRequest! });
      e.payoutPaymentId = p.id;
      await this.save(e);
      this.emit(e);
    } catch (err) {
      this.log.warn(
        { err, escrowId: e.id },
        'paying out a released escrow failed; the funds stay on the payee account',
      );
    }
  }

  // ---- watching -------------------------------------------------------------------------------

  private watch(e: Escrow): void {
    if (this.watches.has(e.id) || this.stopped) return;
    const sub = this.backend.watchInvoice(
      e.paymentHash,
      (invoice) =>
        void this.run(e.id, () => this.onInvoice(e, invoice)).catch((err: unknown) =>
          this.log.error({ err, escrowId: e.id }, 'escrow update failed'),
        ),
      (err) =>
        this.log.warn({ err: err.message, escrowId: e.id }, 'escrow invoice watch interrupted; resuming'),
    );
    this.watches.set(e.id, sub);
  }

  private closeWatch(id: string): void {
    this.watches.get(id)?.close();
    this.watches.delete(id);
  }

  private async onInvoice(e: Escrow, invoice: Invoice): Promise<void> {
    if (e.funding !== 'lightning') return;
    if (invoice.state === 'accepted' && e.state === 'open') {
      const heights = invoice.htlcs
        .filter((h) => h.state === 'accepted' && h.expiryHeight > 0)
        .map((h) => h.expiryHeight);
      const now = this.now();
      e.state = 'funded';
      e.fundedAt = now;
      e.updatedAt = now;
      if (heights.length > 0) e.htlcExpiryHeight = Math.min(...heights);
      await this.save(e);
      this.emit(e);
      if (now >= e.deadline) await this.refund(e, 'deadline');
    } else if (invoice.state === 'canceled') {
      const why =
        e.state === 'refunding'
          ? (e.reason ?? 'refunded')
          : e.state === 'open'
            ? 'invoice_expired'
            : 'htlc_canceled';
      await this.markRefunded(e, why);
    } else if (invoice.state === 'settled' && e.state === 'releasing') {
      await this.release(e, e.reason ?? 'released');
    }
  }

  private async sweepDeadlines(): Promise<void> {
    const now = this.now();
    for (const e of this.escrows.values()) {
      if (now < e.deadline) continue;
      if (e.state === 'open' || e.state === 'funded')
        await this.run(e.id, () =>
          e.state === 'open' || e.state === 'funded' ? this.refund(e, 'deadline') : Promise.resolve(e),
        ).catch((err: unknown) => this.log.warn({ err, escrowId: e.id }, 'deadline refund failed; retrying'));
    }
  }

  /**
   * Retries the releases and refunds left half-way (the payee could not take the amount, LND was
   * down...).
   */
  private async sweepReleasing(): Promise<void> {
    for (const e of this.escrows.values()) {
      if (e.state === 'releasing')
        await this.run(e.id, () =>
          e.state === 'releasing' ? this.release(e, e.reason ?? 'resumed') : Promise.resolve(e),
        ).catch((err: unknown) => this.log.warn({ err, escrowId: e.id }, 'escrow release failed; retrying'));
      else if (e.state === 'refunding')
        await this.run(e.id, () =>
          e.state === 'refunding' ? this.refund(e, e.reason ?? 'resumed') : Promise.resolve(e),
        ).catch((err: unknown) => this.log.warn({ err, escrowId: e.id }, 'escrow refund failed; retrying'));
    }
  }

  private async sweepHeights(): Promise<void> {
    const held = [...this.escrows.values()].filter(
      (e) => e.funding === 'lightning' && e.state === 'funded' && e.htlcExpiryHeight !== undefined,
    );
    if (held.length === 0) return;
    const { blockHeight } = await this.backend.getNodeInfo();
    for (const e of held) {
      if (!mustCancel(e.htlcExpiryHeight!, blockHeight, this.safetyBlocks)) continue;
      this.log.warn(
        { escrowId: e.id, blockHeight, htlcExpiryHeight: e.htlcExpiryHeight },
        'CLTV safety cancel',
      );
      await this.run(e.id, () =>
        e.state === 'funded' ? this.refund(e, 'cltv_safety') : Promise.resolve(e),
      ).catch((err: unknown) =>
        this.log.error({ err, escrowId: e.id }, 'CLTV safety cancel failed; retrying'),
      );
    }
  }

  // ---- helpers --------------------------------------------------------------------------------

  /** One operation at a time per escrow. */
  private run<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(id, fn);
  }

  private save(e: Escrow, extra: SideRecords = []): Promise<void> {
    this.escrows.remember(e);
    return this.ledger.putRecords([...escrowIndex.records(e), ...extra]);
  }

  private emit(e: Escrow): void {
    const view = publicEscrow(e);
    this.publish(e.payerAccountId, { type: 'escrow', escrow: view });
    if (e.payeeAccountId !== undefined && e.payeeAccountId !== e.payerAccountId)
      this.publish(e.payeeAccountId, { type: 'escrow', escrow: view });
  }

  /** The escrow, from memory or (closed ones) from its record. */
  private async must(id: string): Promise<Escrow> {
    const e = await this.escrows.find(id);
    if (!e) this.notFound(id);
    return e;
  }

  private notFound(id: string): never {
    throw new EscrowError(EscrowErrorCode.ESCROW_NOT_FOUND, `no escrow ${id}`);
  }

  private roleOf(e: Escrow, actor: Actor): 'operator' | 'payer' | 'payee' | 'none' {
    if (actor.type === 'operator') return 'operator';
    if (actor.accountId === e.payerAccountId) return 'payer';
    if (actor.accountId === e.payeeAccountId) return 'payee';
    return 'none';
  }

  private async assertPayee(payer: string, payee: string): Promise<void> {
    const account = await this.ledger.requireAccount(payee);
    if (payee === payer)
      throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'payer and payee must differ');
    if (account.kind === 'system')
      throw new EscrowError(EscrowErrorCode.INVALID_ARGUMENT, 'a system account cannot be a payee');
  }

  private assertCondition(e: Escrow, type: Escrow['condition']['type']): void {
    if (e.condition.type !== type)
      throw new EscrowError(
        EscrowErrorCode.CONDITION_MISMATCH,
        `this escrow is released by ${e.condition.type}, not by ${type}`,
      );
  }

  private assertPayeeActor(e: Escrow, actor: Actor): void {
    if (e.payeeAccountId === undefined)
      throw new EscrowError(EscrowErrorCode.NO_PAYEE, 'this escrow has no payee yet');
    if (actor.type === 'account' && actor.accountId !== e.payeeAccountId)
      this.forbidden('only the payee presents the proof');
  }

  /**
   * An account's receipt keys: from the cache, else read from disk (`rkey!<account>!`). The first
   * set cached wins; a registration or removal is durable before it is applied to the cached set,
   * so a set read before it is corrected by it, and one read after it already has it.
   */
  private async keysOf(accountId: string): Promise<Set<string>> {
    const cached = this.receiptKeys.get(accountId);
    if (cached) return cached;
    const prefix = receiptKeysPrefix(accountId);
    const rows = await this.ledger.listRecords(prefix);
    const read = new Set(rows.map((r) => r.key.slice(prefix.length)));
    const now = this.receiptKeys.get(accountId);
    if (now) return now;
    this.receiptKeys.set(accountId, read);
    return read;
  }

  private wrongState(e: Escrow, action: string): never {
    throw new EscrowError(EscrowErrorCode.INVALID_STATE, `cannot ${action} an escrow that is ${e.state}`, {
      state: e.state,
    });
  }

  private forbidden(message: string): never {
    throw new EscrowError(EscrowErrorCode.FORBIDDEN, message);
  }
}
