import type { Ledger } from '../ledger/ledger.js';
import { availableOf } from '../ledger/types.js';
import type { SpendContext } from '../policy/types.js';

/** Ledger transfer codes that count as spending for budgets and rates. */
export const SPEND_CODES = new Set(['payment', 'internal_payment', 'transfer', 'stream', 'escrow']);

/** What the policy engine sees of an account, read synchronously from the ledger. */
export function spendContext(ledger: Ledger, accountId: string, now: number, approved = false): SpendContext {
  const account = ledger.requireAccount(accountId);
  const debits = (since: number) =>
    ledger.recentDebits(accountId, since).filter((t) => SPEND_CODES.has(t.code));
  return {
    frozen: account.frozen,
    availableMsat: availableOf(account),
    spentSince: (since) => debits(since).reduce((s, t) => s + t.amount, 0n),
    countSince: (since) => debits(since).length,
    inFlight: ledger.recentDebits(accountId, 0).filter((t) => t.state === 'pending' && t.code === 'payment')
      .length,
    now,
    approved,
  };
}
