import { LedgerError } from '../ledger/errors.js';
import { balanceOf, isGatewayAccount, type Account } from '../ledger/types.js';
import { PaymentsPart, type PaymentsContext } from './context.js';
import type { Inbound } from './inbound.js';
import type { Outbound } from './outbound.js';
import type { PaymentStore } from './payment-store.js';
import { PaymentError, PaymentErrorCode } from './errors.js';
import type { Payment } from './types.js';

/** Final payments read from disk per page of a full reconciliation. */
const FULL_PAGE = 200;

/** A full reconciliation run in the background, with its progress. */
export interface ReconciliationJob {
  state: 'idle' | 'running' | 'done' | 'failed';
  /** Payments compared with LND so far. */
  checked: number;
  mismatches: number;
  startedAt?: number;
  finishedAt?: number;
}

export interface Liabilities {
  accountsMsat: string;
  pendingOutMsat: string;
  nodeChannelLocalMsat: string;
  nodeOnchainMsat: string;
  /** Node funds over liabilities, as a decimal string ratio (e.g. "1.25"); "inf" without liabilities. */
  coverage: string;
}

/** Reconciliation with LND: pending payments re-tracked, open invoices caught up, final ones checked. */
export class Reconciliation extends PaymentsPart {
  private current: ReconciliationJob = { state: 'idle', checked: 0, mismatches: 0 };

  constructor(
    ctx: PaymentsContext,
    private readonly store: PaymentStore,
    private readonly outbound: Outbound,
    private readonly inbound: Inbound,
  ) {
    super(ctx);
  }

  /**
   * The payments not final yet: from memory, where every live payment of this instance is; on a
   * shared store, from the store's index of open payments, every instance's (one that died left
   * its payments to the leader's reconciliation), a page at a time.
   */
  private async *livePayments(): AsyncGenerator<Payment> {
    if (this.ledger.shared) yield* this.store.liveOnDisk();
    else yield* this.store.live();
  }

  /**
   * Re-tracks every non-final payment (no age cut-off; from memory, where every live payment is)
   * and catches up on open invoices. A full pass also checks every final Lightning payment
   * against LND, paging through them on disk; on a mismatch the account is frozen and an alert
   * is raised. `progress` is updated as the pass goes (the background job shows it).
   */
  async reconcile(
    { full }: { full: boolean },
    progress: { checked: number; mismatches: number } = { checked: 0, mismatches: 0 },
  ): Promise<{ checked: number; mismatches: number }> {
    // Cancels of internally settled invoices LND has not confirmed yet (lost to a crash or an outage).
    // One that fails stays for the next pass and holds none of the others (nor the start) up.
    for (const hash of [...this.inbound.cancelIntents])
      await this.inbound
        .completeCancel(hash)
        .catch((err: unknown) =>
          this.log.warn({ err, hash }, 'could not complete the cancel of an internally paid invoice'),
        );
    for await (const p of this.livePayments()) {
      if (p.status !== 'pending') continue;
      progress.checked += 1;
      const lnd = await this.backend.trackPayment(p.paymentHash, { timeoutMs: 0 }).catch(() => undefined);
      if (!lnd) continue;
      // A shared store: the payer's lease may be busy on another instance; the next pass retries.
      const booked = await this.outbound.apply(p, lnd, true).then(
        () => true,
        (err: unknown) => {
          if (err instanceof LedgerError && err.status === 503) return false;
          throw err;
        },
      );
      const still = this.store.livePayment(p.id);
      if (booked && still?.status === 'pending') this.outbound.track(still);
    }
    if (full) {
      let cursor: string | undefined;
      do {
        const page = await this.store.pageAll(FULL_PAGE, cursor);
        for (const p of page.payments) await this.checkFinal(p, progress);
        cursor = page.nextCursor;
      } while (cursor !== undefined && !this.stopped);
    }
    // The invoices LND may still take a payment for (the expiry index, a page at a time):
    // open account invoices are caught up (an L402 challenge's payment is caught by the
    // subscription, or proven by its preimage when used); a full pass also checks every internally
    // settled invoice LND has not confirmed final (not expired): one still open there is canceled,
    // one paid is a double payment.
    const now = this.now();
    let after: string | undefined;
    do {
      const page = await this.inbound.invoices.live(500, after);
      for (const { hash, kind } of page.entries) {
        if (kind === 'challenge' || (kind === 'internal' && !full)) continue;
        const inv = await this.inbound.invoices.peek(hash);
        if (!inv) continue;
        if (inv.state === 'open') {
          const lnd = await this.backend.lookupInvoice(hash).catch(() => undefined);
          if (lnd && lnd.state !== 'open') await this.inbound.onInvoice(lnd);
          continue;
        }
        if (
          !full ||
          inv.settledVia !== 'internal' ||
          inv.closedInLnd === true ||
          inv.expiresAt <= now ||
          this.inbound.cancelIntents.has(hash)
        )
          continue;
        const lnd = await this.backend.lookupInvoice(hash).catch(() => undefined);
        if (lnd?.state === 'settled') await this.inbound.onInvoice(lnd);
        else if (lnd?.state === 'open' || lnd?.state === 'accepted') {
          this.log.warn({ hash }, 'an internally paid invoice was still open in LND; canceling');
          await this.inbound.requestCancel(hash);
        }
      }
      after = page.next;
    } while (after !== undefined);
    return { checked: progress.checked, mismatches: progress.mismatches };
  }

  /**
   * Starts a full reconciliation in the background (one at a time: 409 while one runs) and
   * returns its state; `job()` shows its progress.
   */
  startJob(): ReconciliationJob {
    if (this.current.state === 'running')
      throw new PaymentError(PaymentErrorCode.RECONCILIATION_RUNNING, 'a full reconciliation is running');
    const job: ReconciliationJob = { state: 'running', checked: 0, mismatches: 0, startedAt: this.now() };
    this.current = job;
    void this.reconcile({ full: true }, job).then(
      () => {
        job.state = 'done';
        job.finishedAt = this.now();
      },
      (err: unknown) => {
        this.log.error({ err }, 'full reconciliation failed');
        job.state = 'failed';
        job.finishedAt = this.now();
      },
    );
    return { ...job };
  }

  /** The state of the last full reconciliation job (`idle` if none ran since start). */
  job(): ReconciliationJob {
    return { ...this.current };
  }

  /**
   * A final Lightning payment against LND. Only payments LND was asked to make, and only the
   * latest attempt per hash: LND keeps one record per hash, so an older attempt's final state
   * cannot be compared with it.
   */
  private async checkFinal(p: Payment, progress: { checked: number; mismatches: number }): Promise<void> {
    if (p.kind === 'internal' || (p.status !== 'succeeded' && p.status !== 'failed')) return;
    if (p.sentAt === undefined || (await this.store.latestAttempt(p.paymentHash)) !== p.id) return;
    progress.checked += 1;
    const lnd = await this.backend.trackPayment(p.paymentHash, { timeoutMs: 0 }).catch(() => undefined);
    if (!lnd) return;
    const agrees =
      (p.status === 'succeeded' && lnd.status === 'succeeded') ||
      (p.status === 'failed' && (lnd.status === 'failed' || lnd.status === 'not_found'));
    if (agrees) return;
    progress.mismatches += 1;
    this.log.error(
      { paymentId: p.id, ledger: p.status, lnd: lnd.status },
      'ledger and LND disagree about a payment',
    );
    await this.ledger.ensure({ spend: [p.accountId] });
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

  /**
   * What the gateway owes its accounts against what the node holds, without reading every account
   * (a console overview on 100,000 accounts): in double entry every posted amount is debited from
   * one account and credited to another, so what the accounts hold is minus what the gateway's own
   * accounts hold (`sys:` ids, a handful); every pending transfer is in memory, so the pending
   * debits are those of the accounts on their debit side.
   */
  async liabilities(): Promise<Liabilities> {
    let owed = 0n;
    for (const a of await this.gatewayAccounts()) owed -= balanceOf(a);
    let pendingOut = 0n;
    for (const id of new Set(this.ledger.pendingTransfers().map((t) => t.debitAccountId))) {
      const a = await this.ledger.getAccount(id);
      if (a && !isGatewayAccount(a.id, a.kind)) pendingOut += a.debitsPending;
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

  /** The gateway's own accounts: every id in the `sys:` range, paged from disk. */
  private async gatewayAccounts(): Promise<Account[]> {
    const found: Account[] = [];
    // Ids sort bytewise; "sys9" sorts right before "sys:" (an id "sys9…" in between is skipped).
    for (let after = 'sys9'; ;) {
      const page = await this.ledger.listAccounts({ after, limit: 100 });
      for (const a of page) {
        if (a.id.startsWith('sys:')) found.push(a);
        else if (a.id > 'sys:') return found;
      }
      const last = page[page.length - 1];
      if (page.length < 100 || !last) return found;
      after = last.id;
    }
  }
}
