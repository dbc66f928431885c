import type { Logger } from '../domain/logger.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import type { LightningBackend } from '../lightning/backend.js';
import type { AuditLog } from '../policy/audit.js';
import { evaluate } from '../policy/engine.js';
import { PolicyDeniedError } from '../policy/errors.js';
import type { PolicyRegistry } from '../policy/registry.js';
import type { Decision, SpendRequest } from '../policy/types.js';
import type { EventBus } from './events.js';
import { spendContext } from './spend-context.js';
import type { Payment } from './types.js';

/** How often `prepare` takes leases handed over while it read again before it lets the step fail. */
const PREPARE_ATTEMPTS = 5;

/** What the parts of the payments service share: their dependencies, settings and node. */
export class PaymentsContext {
  nodePubkey = '';
  network = '';
  stopped = false;

  constructor(
    readonly ledger: Ledger,
    readonly backend: LightningBackend,
    readonly policies: PolicyRegistry,
    readonly audit: AuditLog,
    readonly events: EventBus,
    readonly log: Logger,
    readonly now: () => number,
    readonly settings: { payTimeoutMs: number; approvalTtlMs: number; notFoundGraceMs: number },
  ) {}

  /**
   * Makes resident what a following synchronous step reads: the ledger accounts (and ledger
   * idempotency keys) it moves money on, and the policies it decides with: `payers` are the
   * accounts the step debits (on a store several instances share, their leases are taken first),
   * `others` the rest. Await it right before the step (see `Ledger.ensure`).
   */
  async prepare(
    payers: readonly string[],
    others: readonly string[] = [],
    keys: readonly string[] = [],
  ): Promise<void> {
    const all = [...payers, ...others];
    if (!this.ledger.shared) {
      await Promise.all([
        this.ledger.ensure({ spend: payers, accounts: others, keys }),
        this.policies.ensure(all),
      ]);
      return;
    }
    // A shared store: the policies are read once the leases are taken (taking one drops its
    // account's cached policy, which another instance may have changed). What is read after a
    // lease is taken (the other accounts, the policies) may take longer than a lease stays idle
    // before this instance hands it to another that asks for it; the step's debit would then be
    // refused (LEASE_NOT_HELD) although nothing was wrong. So the leases are checked (and marked
    // used) last, synchronously before the step: one handed over meanwhile is taken again.
    for (let attempt = 1; ; attempt++) {
      await this.ledger.ensure({ spend: payers, accounts: others, keys });
      await this.policies.ensure(all);
      if ((this.ledger.holdsLeases(payers) && this.policies.resident(all)) || attempt >= PREPARE_ATTEMPTS)
        return;
    }
  }

  /**
   * True when `prepare(accounts)` would read nothing: the accounts and their policies are resident
   * (marked used now, so they stay so) or known not to exist. The synchronous step may then run
   * at once, without awaiting `prepare`.
   */
  ready(accounts: readonly string[]): boolean {
    return this.ledger.resident(accounts) && this.policies.resident(accounts);
  }

  /**
   * Evaluates the account's policy and audits the decision. With `auditInto`, an allowing
   * decision's audit record is appended there for the caller to commit with what it allows (see
   * `AuditLog.record`); every other decision is written at once.
   */
  decide(
    accountId: string,
    req: SpendRequest,
    approved = false,
    paymentId?: string,
    auditInto?: SideRecords,
  ): Decision {
    const now = this.now();
    const decision = evaluate(
      this.policies.get(accountId),
      req,
      spendContext(this.ledger, accountId, now, approved),
    );
    this.audit.record(accountId, req, decision, now, paymentId, auditInto);
    return decision;
  }

  /**
   * Runs the ledger step `step` that commits side records including an audit record taken by
   * `decide`. If the step throws (nothing was committed) or replays an earlier step (which
   * commits no side records), the audit records are written on their own: a decision is never
   * missing from the trail.
   */
  withAudit<T extends { replayed: boolean }>(audit: SideRecords, step: () => T): T {
    let result: T;
    try {
      result = step();
    } catch (err) {
      this.audit.write(audit);
      throw err;
    }
    if (result.replayed) this.audit.write(audit);
    return result;
  }

  deny(decision: Decision): never {
    throw new PolicyDeniedError(decision as Decision & { code: NonNullable<Decision['code']> });
  }

  finish(payment: Payment, status: Payment['status'], fields: Partial<Payment>): void {
    Object.assign(payment, fields);
    payment.status = status;
    payment.updatedAt = this.now();
  }

  alert(accountId: string, code: string, message: string): void {
    this.log.warn({ accountId, code }, message);
    this.events.publish(accountId, { type: 'alert', accountId, code, message });
  }
}

/** A part of the payments service: the shared context under the names the code has always used. */
export abstract class PaymentsPart {
  constructor(protected readonly ctx: PaymentsContext) {}

  protected get ledger(): Ledger {
    return this.ctx.ledger;
  }
  protected get backend(): LightningBackend {
    return this.ctx.backend;
  }
  protected get events(): EventBus {
    return this.ctx.events;
  }
  protected get log(): Logger {
    return this.ctx.log;
  }
  protected get nodePubkey(): string {
    return this.ctx.nodePubkey;
  }
  protected get network(): string {
    return this.ctx.network;
  }
  protected get stopped(): boolean {
    return this.ctx.stopped;
  }
  protected now(): number {
    return this.ctx.now();
  }
  protected decide(
    accountId: string,
    req: SpendRequest,
    approved = false,
    paymentId?: string,
    auditInto?: SideRecords,
  ): Decision {
    return this.ctx.decide(accountId, req, approved, paymentId, auditInto);
  }
  protected deny(decision: Decision): never {
    return this.ctx.deny(decision);
  }
  protected finish(payment: Payment, status: Payment['status'], fields: Partial<Payment>): void {
    this.ctx.finish(payment, status, fields);
  }
  protected alert(accountId: string, code: string, message: string): void {
    this.ctx.alert(accountId, code, message);
  }
}
