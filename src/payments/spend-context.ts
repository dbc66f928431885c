import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf } from '../ledger/types.js';
import type { SpendContext } from '../policy/types.js';

export { SPEND_CODES } from '../ledger/spend-buckets.js';

/**
 * What the policy engine sees of an account, read synchronously from the ledger (the account must
 * be resident: `await ledger.ensure({ accounts: [accountId] })` first): the balance and
 * the running sums of its spend buckets (O(buckets), conservative: see ledger/spend-buckets.ts).
 */
export function spendContext(ledger: Ledger, accountId: string, now: number, approved = false): SpendContext {
  const account = ledger.accountNow(accountId);
  if (!account) throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${accountId}`);
  const figures = ledger.spending(accountId, now);
  return {
    frozen: account.frozen,
    availableMsat: availableOf(account),
    spentSince: figures.spentSince,
    countSince: figures.countSince,
    inFlight: figures.inFlight,
    now,
    approved,
  };
}
