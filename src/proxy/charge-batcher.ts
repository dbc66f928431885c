import { msat } from '../domain/msat.js';
import type { Ledger } from '../ledger/ledger.js';

interface Pending {
  amount: bigint;
  count: number;
  revenue: string;
  waiters: { resolve: () => void; reject: (err: unknown) => void }[];
}

/**
 * Fixed-price charges, aggregated: the requests of one credential that arrive while the ledger
 * writes a batch become one ledger transfer, made at the start of the next group-commit batch.
 * Each request still waits until its charge is durable; what it saves is a ledger record per
 * request, and a wait of its own before joining a batch. The sums not yet written count against
 * the credential's credit, so it can never be overspent.
 */
export class ChargeBatcher {
  private pending = new Map<string, Pending>();
  private readonly detach: () => void;

  constructor(private readonly ledger: Ledger) {
    this.detach = ledger.beforeCommit(() => this.flush());
  }

  /** Stops taking part in the ledger's batches (when the proxy closes), writing what is pending. */
  close(): void {
    this.flush();
    this.detach();
  }

  /** What is charged in memory but not yet written, for a credential. */
  unwritten(accountId: string): bigint {
    return this.pending.get(accountId)?.amount ?? 0n;
  }

  charge(accountId: string, revenueAccountId: string, amount: bigint): Promise<void> {
    let p = this.pending.get(accountId);
    if (!p)
      this.pending.set(accountId, (p = { amount: 0n, count: 0, revenue: revenueAccountId, waiters: [] }));
    p.amount += amount;
    p.count += 1;
    const done = new Promise<void>((resolve, reject) => p.waiters.push({ resolve, reject }));
    this.ledger.wantCommit();
    return done;
  }

  /**
   * Takes back a charge that is already durable (the upstream failed): a transfer of its own,
   * durable before this resolves, whatever happens to the charges still pending.
   */
  async refund(accountId: string, revenueAccountId: string, amount: bigint): Promise<void> {
    await this.ledger.ensure({ spend: [revenueAccountId], accounts: [accountId] });
    await this.ledger.transfer({
      debitAccountId: revenueAccountId,
      creditAccountId: accountId,
      amount: msat(amount),
      code: 'l402_refund',
    }).durable;
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = new Map();
    for (const [accountId, p] of batch) {
      try {
        const t = this.ledger.transfer({
          debitAccountId: accountId,
          creditAccountId: p.revenue,
          amount: msat(p.amount),
          code: 'l402_requests',
          memo: `${p.count} requests`,
        });
        t.durable.then(
          () => p.waiters.forEach((w) => w.resolve()),
          (err: unknown) => p.waiters.forEach((w) => w.reject(err)),
        );
      } catch (err) {
        for (const w of p.waiters) w.reject(err);
      }
    }
  }
}
