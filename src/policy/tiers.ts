import { msat } from '../domain/msat.js';
import type { Policy, PolicyRule, TierName } from './types.js';

/** Amounts of the trust tiers, in msat; operators can override them in the config. */
export interface TierAmounts {
  L1: { dailyMsat: bigint; perPaymentMsat: bigint };
  L2: { dailyMsat: bigint; perPaymentMsat: bigint };
}

export const DEFAULT_TIER_AMOUNTS: TierAmounts = {
  L1: { dailyMsat: 100_000_000n, perPaymentMsat: 10_000_000n }, // 100k sat a day, 10k sat a payment
  L2: { dailyMsat: 10_000_000_000n, perPaymentMsat: 1_000_000_000n }, // 10M sat a day, 1M sat a payment
};

/** L0 view-only, L1 basic (small daily limit), L2 full (large daily limit), L3 enterprise (no daily limit). */
export function tierPolicy(tier: TierName, amounts: TierAmounts = DEFAULT_TIER_AMOUNTS): Policy {
  switch (tier) {
    case 'L0':
      return { tier, rules: [{ type: 'no_spending' }] };
    case 'L1':
      return limited(tier, amounts.L1, [
        { type: 'max_in_flight', max: 5 },
        { type: 'max_per_minute', max: 60 },
      ]);
    case 'L2':
      return limited(tier, amounts.L2, [{ type: 'max_in_flight', max: 50 }]);
    case 'L3':
      return { tier, rules: [{ type: 'max_in_flight', max: 500 }] };
  }
}

function limited(
  tier: TierName,
  limits: { dailyMsat: bigint; perPaymentMsat: bigint },
  extra: PolicyRule[],
): Policy {
  return {
    tier,
    rules: [
      { type: 'max_per_payment', maxMsat: msat(limits.perPaymentMsat) },
      { type: 'budget', window: 'day', maxMsat: msat(limits.dailyMsat) },
      ...extra,
    ],
  };
}
