import { msat } from '../domain/msat.js';
import type { Ledger } from '../ledger/ledger.js';

/** Whether a batch of charges is on disk yet, readable without waiting (see `ChargeBatcher.charge`). */
export interface ChargeState {
  /** Set once the charges are durable (never when they failed). */
  readonly done: boolean;
}

/** A credential's charges not yet written: one sum, and one promise for all its requests. */
interface Pending extends ChargeState {
  done: boolean;
  amount: bigint;
  count: number;
  revenue: string;
  durable: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

function pending(revenue: string): Pending {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const durable = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Its requests await it only once their upstream answered: a refusal before that (e.g. the
  // credential's lease lost) must not be an unhandled rejection, which ends the process. They
  // still get it.
  durable.catch(() => undefined);
  const p: Pending = { done: false, amount: 0n, count: 0, revenue, durable, resolve, reject };
  p.resolve = () => {
    p.done = true;
    resolve();
  };
  return p;
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
    // A shared store: a credential's lease stays here while its charges wait for the batch.
    this.detach = ledger.beforeCommit(
      () => this.flush(),
      (accountId) => this.pending.has(accountId),
    );
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

  /**
   * Charges a request: `durable` resolves once the charge is on disk, and `done` says so without a
   * wait (a caller that finds it set goes on at once). Every request of a credential charged
   * before the same batch gets the same state (no allocation per request).
   */
  charge(
    accountId: string,
    revenueAccountId: string,
    amount: bigint,
  ): ChargeState & { durable: Promise<void> } {
    let p = this.pending.get(accountId);
    if (!p) this.pending.set(accountId, (p = pending(revenueAccountId)));
    p.amount += amount;
    p.count += 1;
    this.ledger.wantCommit();
    return p;
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
        t.durable.then(p.resolve, p.reject);
      } catch (err) {
        p.reject(err);
      }
    }
  }
}
