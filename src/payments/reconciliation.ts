import { balanceOf } from '../ledger/types.js';
import { PaymentsPart, type PaymentsContext } from './context.js';
import type { Inbound } from './inbound.js';
import type { Outbound } from './outbound.js';
import type { PaymentStore } from './payment-store.js';

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
  constructor(
    ctx: PaymentsContext,
    private readonly store: PaymentStore,
    private readonly outbound: Outbound,
    private readonly inbound: Inbound,
  ) {
    super(ctx);
  }

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
    for (const hash of [...this.inbound.cancelIntents])
      await this.inbound
        .completeCancel(hash)
        .catch((err: unknown) =>
          this.log.warn({ err, hash }, 'could not complete the cancel of an internally paid invoice'),
        );
    for (const p of [...this.store.payments.values()]) {
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
      if (p.status !== 'pending' && (p.sentAt === undefined || this.store.byHash.get(p.paymentHash) !== p.id))
        continue;
      checked += 1;
      const lnd = await this.backend.trackPayment(p.paymentHash, { timeoutMs: 0 }).catch(() => undefined);
      if (!lnd) continue;
      if (p.status === 'pending') {
        await this.outbound.apply(p, lnd, true);
        if (this.store.payments.get(p.id)?.status === 'pending') this.outbound.track(p);
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
    return { checked, mismatches };
  }

  /** What the gateway owes its accounts against what the node holds. */
  async liabilities(): Promise<Liabilities> {
    let owed = 0n;
    let pendingOut = 0n;
    for (const a of this.ledger.listAccounts()) {
      if (a.kind === 'system' || a.kind === 'operator') continue;
      owed += balanceOf(a);
      pendingOut += a.debitsPending;
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
}
