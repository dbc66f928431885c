/** The gateway's own ledger accounts, which fund or clear the others (negative balances allowed). */

/** The operator's funds: allocations to accounts come from here, refunds and held money go here. */
export const OPERATOR_ACCOUNT = 'sys:operator';
/** The Lightning clearing account: what the node sends and receives is booked against it. */
export const LIGHTNING_ACCOUNT = 'sys:lightning';
