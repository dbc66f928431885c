import type { Msat } from '../domain/msat.js';

const HOUR = 3600_000;
export const WINDOWS = { hour: HOUR, day: 24 * HOUR, week: 7 * 24 * HOUR, month: 30 * 24 * HOUR } as const;
export type WindowName = keyof typeof WINDOWS;

/** One rule of an account's spending policy. Amounts in msat as decimal strings in JSON. */
export type PolicyRule =
  | { type: 'no_spending' }
  | { type: 'max_per_payment'; maxMsat: Msat }
  | { type: 'budget'; window: WindowName; maxMsat: Msat }
  | { type: 'max_share_of_balance'; basisPoints: number }
  | { type: 'min_reserve'; minMsat: Msat }
  | { type: 'payee_allowlist'; pubkeys?: string[]; domains?: string[] }
  | { type: 'payee_denylist'; pubkeys?: string[]; domains?: string[] }
  | { type: 'max_in_flight'; max: number }
  | { type: 'max_per_minute'; max: number }
  | { type: 'approval_above'; thresholdMsat: Msat };

export type TierName = 'L0' | 'L1' | 'L2' | 'L3';

export interface Policy {
  /** The trust tier the rules came from, when they did. */
  tier?: TierName;
  rules: PolicyRule[];
}

/** What an account wants to spend. `totalMsat` is amount plus the fee limit: the worst case. */
export interface SpendRequest {
  kind: 'bolt11' | 'keysend' | 'internal_transfer' | 'l402' | 'stream' | 'escrow';
  amountMsat: Msat;
  feeLimitMsat: Msat;
  payee: { pubkey?: string; domain?: string; accountId?: string };
}

/** What the engine needs to know about the account right now (read synchronously). */
export interface SpendContext {
  frozen: boolean;
  availableMsat: bigint;
  /** Sum of non-voided debits since `since` (pending reservations count). */
  spentSince(since: number): bigint;
  /** Non-voided debits since `since`, counted. */
  countSince(since: number): number;
  inFlight: number;
  now: number;
  /** An operator approved this very request. */
  approved?: boolean;
}

export type RuleOutcome = 'allow' | 'deny' | 'needs_approval';

export interface RuleResult {
  rule: PolicyRule['type'] | 'frozen' | 'policy';
  outcome: RuleOutcome;
  reason?: string;
}

export type DenialCode =
  | 'ACCOUNT_FROZEN'
  | 'NO_POLICY'
  | 'SPENDING_DISABLED'
  | 'PAYMENT_CAP_EXCEEDED'
  | 'QUOTA_EXCEEDED'
  | 'BALANCE_SHARE_EXCEEDED'
  | 'RESERVE_REQUIRED'
  | 'PAYEE_RESTRICTED'
  | 'TOO_MANY_IN_FLIGHT'
  | 'RATE_LIMITED'
  | 'NEEDS_APPROVAL';

export interface Decision {
  outcome: RuleOutcome;
  code?: DenialCode;
  reason?: string;
  /** For rate-type denials: when trying again can succeed. */
  retryAfterMs?: number;
  evaluated: RuleResult[];
}
