import { randomBytes, randomUUID } from 'node:crypto';
import type { PaymentHashClaims } from './hash-claims.js';
import { isPubkey, paymentHashOf } from '../domain/hex.js';
import { msat, type Msat } from '../domain/msat.js';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import type { Applied, SideRecords } from '../ledger/ledger.js';
import type { Transfer } from '../ledger/types.js';
import { isGatewayAccount } from '../ledger/types.js';
import { LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT } from '../ledger/system-accounts.js';
import { LightningError, LightningErrorCode } from '../lightning/errors.js';
import { customRecordsProblem } from '../lightning/records.js';
import type { DecodedInvoice, PaymentOutcome, TlvRecord } from '../lightning/types.js';
import type { SpendRequest } from '../policy/types.js';
import { keys } from './codec.js';
import { PaymentsPart, type PaymentsContext } from './context.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import { defaultFeeLimit } from './fee-limit.js';
import type { Inbound } from './inbound.js';
import { finalize, publicPayment, type PaymentStore } from './payment-store.js';
import type {
  Approval,
  Bolt11Payment,
  InternalPayment,
  InvoiceRecord,
  KeysendPayment,
  LivePayment,
  Payment,
} from './types.js';

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

/**
 * Paying: BOLT11 and keysend payments (policy check and reservation in one synchronous step, the
 * same fee limit passed to LND, post on success, void only on a definitive failure), internal
 * settlement of another account's invoice, transfers and funding between accounts, and tracking.
 */
export class Outbound extends PaymentsPart {
  private readonly tracking = new Set<string>();

  constructor(
    ctx: PaymentsContext,
    private readonly store: PaymentStore,
    private readonly inbound: Inbound,
    private readonly claims?: PaymentHashClaims,
  ) {
    super(ctx);
  }

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
      (id) => this.store.replayPayment(id),
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
    // Reading the earlier attempts from disk and reserving happen with no other attempt at this
    // hash in between; the reservation checks the live ones again in its own tick.
    const reserved = await this.store.withHash(decoded.paymentHash, async () => {
      const attempts = await this.store.attempts(decoded.paymentHash);
      this.assertNotPaid(decoded.paymentHash, accountId, attempts);
      // Only this node's invoices can be an account's: their records are read from disk, and the
      // internal settlement runs alone for the invoice (what it checks is what it settles).
      if (decoded.destination === this.nodePubkey && (await this.inbound.findInvoice(decoded.paymentHash)))
        return this.inbound.exclusive(decoded.paymentHash, async () => {
          let own = await this.inbound.findInvoice(decoded.paymentHash);
          if (!own)
            throw new PaymentError(PaymentErrorCode.INVALID_INVOICE, 'this invoice is no longer payable');
          if (own.state !== 'open')
            throw new PaymentError(PaymentErrorCode.ALREADY_PAID, `this invoice is ${own.state}`);
          // An L402 challenge's record keeps no preimage: LND has it.
          const preimage = own.preimage ?? (await this.inbound.preimageOf(own.paymentHash));
          // From here to the transfer is one synchronous step on resident accounts and policies.
          if (this.ledger.shared) own = await this.openUnderLease(accountId, own);
          else await this.ctx.prepare([accountId], [own.accountId]);
          return this.payInternal(accountId, own, input, amount, idem, preimage);
        });
      if (decoded.destination === this.nodePubkey) {
        throw new PaymentError(
          PaymentErrorCode.INVALID_INVOICE,
          'this invoice was issued by the gateway node but is not an account invoice',
        );
      }
      const base = this.newPayment(accountId);
      // A shared store: another instance may be attempting this hash; the database says which may.
      await this.claim(decoded.paymentHash, base.id, accountId);
      try {
        // From here to the reservation is one synchronous step on resident accounts and policies.
        await this.ctx.prepare([accountId], [LIGHTNING_ACCOUNT]);
        const feeLimit = input.maxFeeMsat ?? defaultFeeLimit(amount);
        const payment: Bolt11Payment = {
          ...base,
          kind: 'bolt11',
          status: 'pending',
          paymentHash: decoded.paymentHash,
          request: input.request,
          destination: decoded.destination,
          amountMsat: amount,
          feeLimitMsat: feeLimit,
          ...(attempts.some((a) => a.status === 'failed') ? { retriesFailedHash: true } : {}),
          ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
        };
        const r = this.reserve(
          payment,
          {
            kind: 'bolt11',
            amountMsat: amount,
            feeLimitMsat: feeLimit,
            payee: { pubkey: decoded.destination },
          },
          idem(payment.id),
        );
        await r.durable;
        return r.payment;
      } catch (err) {
        // Refused before anything was reserved (policy, funds): the hash is free again.
        await this.claims?.release(decoded.paymentHash, base.id).catch(() => undefined);
        throw err;
      }
    });
    if (reserved.status !== 'pending') return publicPayment(reserved);
    return this.send(reserved);
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
      (id) => this.store.replayPayment(id),
    );
  }

  private async keysendOnce(
    accountId: string,
    input: KeysendInput,
    idem: (id: string) => SideRecords,
  ): Promise<Payment> {
    await this.ledger.requireAccount(accountId);
    if (!isPubkey(input.destination))
      throw new PaymentError(
        PaymentErrorCode.INVALID_ARGUMENT,
        'destination must be a node public key (66 hex characters)',
      );
    if (input.amountMsat <= 0n)
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'amountMsat must be positive');
    if (input.destination === this.nodePubkey)
      throw new PaymentError(PaymentErrorCode.INVALID_ARGUMENT, 'cannot keysend to the gateway node itself');
    await this.ctx.prepare([accountId], [LIGHTNING_ACCOUNT]);
    const preimage = randomBytes(32).toString('hex');
    const paymentHash = paymentHashOf(preimage);
    const feeLimit = input.maxFeeMsat ?? defaultFeeLimit(input.amountMsat);
    const payment: KeysendPayment = {
      ...this.newPayment(accountId),
      kind: 'keysend',
      status: 'pending',
      paymentHash,
      destination: input.destination,
      amountMsat: input.amountMsat,
      feeLimitMsat: feeLimit,
      keysendPreimage: preimage,
      ...(input.records?.length
        ? { records: input.records.map((r) => ({ type: r.type.toString(), value: r.value })) }
        : {}),
      ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
    };
    const reserved = this.reserve(
      payment,
      {
        kind: 'keysend',
        amountMsat: input.amountMsat,
        feeLimitMsat: feeLimit,
        payee: { pubkey: input.destination },
      },
      idem(payment.id),
    );
    await reserved.durable;
    if (reserved.payment.status !== 'pending') return publicPayment(reserved.payment);
    return this.send(reserved.payment);
  }

  /** Moves funds between two accounts of this gateway, within the payer's policy. */
  transfer(
    fromAccountId: string,
    toAccountId: string,
    amount: Msat,
    memo: string,
    idempotencyKey?: string,
  ): Promise<{ transferId: string; replayed: boolean }> {
    // Without a key there is nothing to look up first: the same step, without the idempotency
    // rule's objects (the hot path of internal payments).
    if (idempotencyKey === undefined) return this.transferUnkeyed(fromAccountId, toAccountId, amount, memo);
    return this.ledger.idempotent(
      {
        accountId: fromAccountId,
        key: idempotencyKey,
        operation: 'transfer',
        request: { toAccountId, amountMsat: amount, memo },
      },
      async (records) => {
        // A transfer made before this rule is known by the ledger's own key only.
        const ledgerKey = `transfer:${fromAccountId}:${idempotencyKey}`;
        const earlier = await this.ledger.findByIdempotencyKey(ledgerKey);
        await this.ctx.prepare([fromAccountId], [toAccountId], [ledgerKey]);
        if (earlier) {
          this.assertCreditable(toAccountId);
          if (earlier.creditAccountId !== toAccountId || earlier.amount !== amount)
            throw new PaymentError(
              PaymentErrorCode.IDEMPOTENCY_CONFLICT,
              'this idempotency key was used for a different transfer',
            );
          return { transferId: earlier.id, replayed: true };
        }
        const applied = this.transferStep(fromAccountId, toAccountId, amount, memo, ledgerKey, records);
        await applied.durable;
        return { transferId: applied.value.id, replayed: applied.replayed };
      },
      (transferId) => ({ transferId, replayed: true }),
    );
  }

  /**
   * A transfer without an idempotency key: the synchronous step right away when what it reads is
   * resident (see `PaymentsContext.ready`), else once it is; resolves once durable.
   */
  private transferUnkeyed(
    fromAccountId: string,
    toAccountId: string,
    amount: Msat,
    memo: string,
  ): Promise<{ transferId: string; replayed: boolean }> {
    const step = (): Promise<{ transferId: string; replayed: boolean }> => {
      const applied = this.transferStep(fromAccountId, toAccountId, amount, memo, undefined, undefined);
      const result = { transferId: applied.value.id, replayed: applied.replayed };
      return applied.durable.then(() => result);
    };
    if (this.ctx.ready([fromAccountId, toAccountId])) {
      try {
        return step();
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return this.ctx.prepare([fromAccountId], [toAccountId]).then(step);
  }

  /**
   * The synchronous check-and-transfer of `transfer` (its accounts and policy resident): the
   * payee may be credited, the payer's policy allows it (audited in the transfer's batch), and
   * the ledger moves the funds.
   */
  private transferStep(
    fromAccountId: string,
    toAccountId: string,
    amount: Msat,
    memo: string,
    ledgerKey: string | undefined,
    records: ((ref: string) => SideRecords) | undefined,
  ): Applied<Transfer> {
    this.assertCreditable(toAccountId);
    // An allowing decision's audit record is committed with the transfer it allows.
    const audit: SideRecords = [];
    const decision = this.decide(
      fromAccountId,
      {
        kind: 'internal_transfer',
        amountMsat: amount,
        feeLimitMsat: msat(0),
        payee: { accountId: toAccountId },
      },
      false,
      undefined,
      audit,
    );
    // Approvals exist for Lightning payments only; here "needs approval" is a refusal.
    if (decision.outcome !== 'allow') this.deny(decision);
    const id = randomUUID();
    // The audit record alone is written on its own if the step fails; the key's records never are.
    const side = records ? [...records(id), ...audit] : audit;
    return this.ctx.withAudit(audit, () =>
      this.ledger.transfer(
        {
          id,
          debitAccountId: fromAccountId,
          creditAccountId: toAccountId,
          amount,
          code: 'transfer',
          memo,
          ...(ledgerKey ? { idempotencyKey: ledgerKey } : {}),
        },
        side,
      ),
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

  /**
   * One live attempt per payment hash: a pending or successful one blocks another. `attempts` are
   * the earlier attempts (from disk and memory); the check runs again on the live ones, from
   * memory, in the tick of the reservation.
   */
  private assertNotPaid(hash: string, accountId: string, attempts: readonly Payment[]): void {
    for (const p of attempts) {
      // Another account's payment id is not this caller's business.
      const details = p.accountId === accountId ? { paymentId: p.id } : undefined;
      if (p.status === 'succeeded')
        throw new PaymentError(PaymentErrorCode.ALREADY_PAID, 'this invoice is already paid', details);
      if (p.status === 'pending' || p.status === 'awaiting_approval') {
        throw new PaymentError(
          PaymentErrorCode.PAYMENT_IN_PROGRESS,
          'a payment of this invoice is in progress',
          details,
        );
      }
    }
  }

  /** Takes the hash's claim for attempt `paymentId` (a shared store), or refuses as `assertNotPaid` does. */
  private async claim(hash: string, paymentId: string, accountId: string): Promise<void> {
    if (!this.claims) return;
    const got = await this.claims.claim(hash, paymentId, (id) => this.store.reread(id));
    if (got.claimed) return;
    if (got.holder) this.assertNotPaid(hash, accountId, [got.holder]);
    throw new PaymentError(PaymentErrorCode.PAYMENT_IN_PROGRESS, 'a payment of this invoice is in progress');
  }

  /** What every new payment starts with. */
  private newPayment(accountId: string): {
    id: string;
    accountId: string;
    reservationId: string;
    createdAt: number;
    updatedAt: number;
  } {
    const now = this.now();
    return { id: randomUUID(), accountId, reservationId: randomUUID(), createdAt: now, updatedAt: now };
  }

  /**
   * Policy check and reservation of amount + fee limit, with no await in between: nothing can
   * spend the same funds or budget in the gap. Resolves once the reservation is durable.
   */
  private reserve(
    payment: LivePayment & { status: 'pending' },
    req: SpendRequest,
    extra: SideRecords = [],
  ): { payment: LivePayment; durable: Promise<void> } {
    this.assertNotPaid(payment.paymentHash, payment.accountId, this.store.liveAttempts(payment.paymentHash));
    // An allowing decision's audit record is committed with the reservation it allows.
    const audit: SideRecords = [];
    const decision = this.decide(payment.accountId, req, false, payment.id, audit);
    if (decision.outcome === 'deny') this.deny(decision);
    const records: SideRecords = [...extra, ...audit];
    let approval: Approval | undefined;
    let live: LivePayment = payment;
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
        expiresAt: this.now() + this.ctx.settings.approvalTtlMs,
      };
      live = Object.assign(payment, { status: 'awaiting_approval' as const, approvalId: approval.id });
      records.push(...this.store.approvalRecords(approval));
    }
    records.push(...this.store.records(live));
    const applied = this.ctx.withAudit(audit, () => this.reserveFunds(live, records));
    // Only now that the reservation exists do the payment and its approval exist in memory.
    this.store.remember(live);
    if (approval) this.store.rememberApproval(approval);
    this.events.publish(live.accountId, { type: 'payment', payment: publicPayment(live) });
    if (approval) this.events.publish(live.accountId, { type: 'approval', approval: { ...approval } });
    return { payment: live, durable: applied.durable };
  }

  /** The pending ledger transfer holding amount + fee limit of a payment, with its records. */
  reserveFunds(payment: Payment, records: SideRecords): Applied<Transfer> {
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

  async send(payment: LivePayment): Promise<Payment> {
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
              preimage: payment.keysendPreimage,
              records: (payment.records ?? []).map((r) => ({ type: BigInt(r.type), value: r.value })),
              timeoutMs: this.ctx.settings.payTimeoutMs,
            })
          : await this.backend.payInvoice({
              request: payment.request,
              maxFeeMsat: payment.feeLimitMsat,
              timeoutMs: this.ctx.settings.payTimeoutMs,
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
    try {
      await this.apply(payment, outcome);
    } catch (err) {
      // A shared store: the payer's lease went to another instance meanwhile. The payment was
      // sent; it stays pending and tracking books the outcome under the lease.
      if (!isLeaseError(err)) throw err;
    }
    if (this.store.isPending(payment.id)) this.track(payment);
    return publicPayment(payment);
  }

  /**
   * Applies what LND says to a pending payment: post, void, or leave pending. Idempotent. On a
   * shared store under the payer's lease (which alone may post or void its reservation), with the
   * payment read afresh: another instance (the leader's reconciliation, say) may have booked it.
   */
  async apply(payment: Payment, outcome: PaymentOutcome, fromTracking = false): Promise<void> {
    if (payment.status !== 'pending') return;
    if (!this.ledger.shared) return this.applyNow(payment, outcome, fromTracking);
    if (outcome.status === 'pending') return;
    await this.ledger.underLease(payment.accountId, async () => {
      const stored = await this.store.reread(payment.id);
      if (stored && stored !== payment && stored.status !== 'pending') {
        // Booked elsewhere: this copy is final too (its users see the outcome).
        Object.assign(payment, stored);
        return;
      }
      await this.ledger.ensure({
        accounts: [payment.accountId, LIGHTNING_ACCOUNT],
        transfers: [payment.reservationId],
      });
      await this.applyNow(payment, outcome, fromTracking);
    });
  }

  private async applyNow(payment: Payment, outcome: PaymentOutcome, fromTracking: boolean): Promise<void> {
    if (payment.status !== 'pending') return;
    const sentAt = payment.sentAt ?? payment.createdAt;
    if (outcome.status === 'succeeded') {
      const total = msat(outcome.amountMsat + outcome.feeMsat);
      if (total > payment.amountMsat + payment.feeLimitMsat) {
        this.alert(
          payment.accountId,
          'PAID_MORE_THAN_RESERVED',
          `payment ${payment.id} cost ${total} msat, more than the ${payment.amountMsat + payment.feeLimitMsat} msat reserved; the difference is the operator's`,
        );
      }
      const cap = msat(payment.amountMsat + payment.feeLimitMsat);
      finalize(
        payment,
        { status: 'succeeded', feeMsat: outcome.feeMsat, preimage: outcome.preimage },
        this.now(),
      );
      await this.closePayment(payment, (records) =>
        this.ledger.post(payment.reservationId, total > cap ? cap : total, records),
      );
    } else if (outcome.status === 'failed') {
      // LND keeps one record per hash: right after a retry of a hash that failed before, the old
      // FAILED can still be what tracking sees. Believe it only once the grace has passed.
      if (
        fromTracking &&
        payment.retriesFailedHash &&
        this.now() - sentAt <= this.ctx.settings.notFoundGraceMs
      )
        return;
      finalize(payment, { status: 'failed', failureReason: outcome.reason }, this.now());
      await this.closePayment(payment, (records) =>
        this.ledger.void(payment.reservationId, outcome.reason, records),
      );
    } else if (outcome.status === 'not_found' && this.now() - sentAt > this.ctx.settings.notFoundGraceMs) {
      finalize(payment, { status: 'failed', failureReason: 'NEVER_REACHED_LND' }, this.now());
      await this.closePayment(payment, (records) =>
        this.ledger.void(payment.reservationId, 'never reached LND', records),
      );
    } else {
      return;
    }
    this.events.publish(payment.accountId, { type: 'payment', payment: publicPayment(payment) });
  }

  /**
   * Books a payment made final in memory: `book` posts or voids its reservation with the payment's
   * records (its index entries: no longer open) in the same batch; it leaves the live set.
   */
  async closePayment(payment: Payment, book: (records: SideRecords) => Applied<Transfer>): Promise<void> {
    const applied = book(this.store.records(payment));
    this.store.remember(payment);
    await applied.durable;
  }

  /** Follows a pending payment until LND says it is final (runs in the background). */
  track(payment: LivePayment): void {
    if (this.tracking.has(payment.id) || this.stopped) return;
    this.tracking.add(payment.id);
    void (async () => {
      try {
        while (!this.stopped && this.store.isPending(payment.id)) {
          const outcome = await this.backend
            .trackPayment(payment.paymentHash, { timeoutMs: 60_000 })
            .catch(() => undefined);
          if (outcome)
            await this.apply(payment, outcome, true).catch((err: unknown) => {
              // The payer's lease is busy elsewhere (a shared store): the next round books it.
              if (!isLeaseError(err)) throw err;
            });
          if (this.store.isPending(payment.id))
            await new Promise((r) => setTimeout(r, outcome?.status === 'not_found' ? 1000 : 2000).unref());
        }
      } catch (err) {
        this.log.error({ err, paymentId: payment.id }, 'tracking a payment failed');
      } finally {
        this.tracking.delete(payment.id);
      }
    })();
  }

  /**
   * A shared store: another instance may be settling the invoice. The invoice account's lease
   * keeps the others out (it is not handed over before this settlement is durable); the invoice
   * is read again under it, and the synchronous step may run only while both leases are still
   * this instance's (else it tries again).
   */
  private async openUnderLease(accountId: string, inv: InvoiceRecord): Promise<InvoiceRecord> {
    for (let tries = 0; ; tries++) {
      if (tries === 5)
        throw new LedgerError(
          LedgerErrorCode.LEASE_BUSY,
          'another gateway instance keeps taking these accounts; retry shortly',
          { accounts: [accountId, inv.accountId] },
        );
      await this.ctx.prepare([accountId, inv.accountId]);
      const fresh = await this.inbound.rereadInvoice(inv.paymentHash);
      if (!fresh)
        throw new PaymentError(PaymentErrorCode.INVALID_INVOICE, 'this invoice is no longer payable');
      if (fresh.state !== 'open')
        throw new PaymentError(PaymentErrorCode.ALREADY_PAID, `this invoice is ${fresh.state}`);
      if (this.ledger.spendable(accountId, [fresh.accountId]) && this.ledger.spendable(fresh.accountId))
        return fresh;
    }
  }

  private async payInternal(
    accountId: string,
    inv: InvoiceRecord,
    input: PayInput,
    amount: Msat,
    idem: (id: string) => SideRecords,
    preimage: string | undefined,
  ): Promise<Payment> {
    if (inv.accountId === accountId)
      throw new PaymentError(PaymentErrorCode.OWN_INVOICE, 'an account cannot pay its own invoice');
    if (amount !== inv.amountMsat)
      throw new PaymentError(PaymentErrorCode.AMOUNT_MISMATCH, 'internal invoices are paid in full');
    const payment: InternalPayment = {
      ...this.newPayment(accountId),
      kind: 'internal',
      status: 'succeeded',
      feeMsat: msat(0),
      ...(preimage ? { preimage } : {}),
      paymentHash: inv.paymentHash,
      request: input.request,
      destination: this.nodePubkey,
      amountMsat: amount,
      feeLimitMsat: msat(0),
      payeeAccountId: inv.accountId,
      ...(input.idempotencyKey ? { idempotencyKey: input.idempotencyKey } : {}),
    };
    this.assertNotPaid(inv.paymentHash, accountId, this.store.liveAttempts(inv.paymentHash));
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
    this.inbound.ensureCredentialAccount(inv.accountId);
    // The invoice changes only if the transfer goes through (it can still fail on funds).
    const settled: InvoiceRecord = {
      ...inv,
      state: 'settled',
      settledVia: 'internal',
      payerAccountId: accountId,
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
        ...this.store.records(payment),
        ...this.inbound.invoices.writes(settled),
        ...idem(payment.id),
        // The LND invoice must not be paid again from outside: the intent to cancel it is durable
        // with the settlement, completed now, and retried by reconciliation and after a restart.
        { key: keys.cancelIntent(inv.paymentHash), value: String(this.now()) },
      ],
    );
    Object.assign(inv, settled);
    this.inbound.invoices.remember(inv);
    this.store.remember(payment);
    await applied.durable;
    this.inbound.cancelIntents.add(inv.paymentHash);
    void this.inbound
      .completeCancel(inv.paymentHash)
      .catch((err: unknown) =>
        this.log.warn({ err, hash: inv.paymentHash }, 'could not cancel an internally paid invoice'),
      );
    this.events.publish(accountId, { type: 'payment', payment: publicPayment(payment) });
    this.inbound.publishInvoice(inv);
    return publicPayment(payment);
  }
}

/** A shared store's lease refusals: retried later, never a failure of the payment. */
function isLeaseError(err: unknown): boolean {
  return (
    err instanceof LedgerError &&
    (err.code === LedgerErrorCode.LEASE_BUSY || err.code === LedgerErrorCode.LEASE_NOT_HELD)
  );
}
