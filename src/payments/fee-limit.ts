import { msat, type Msat } from '../domain/msat.js';

/** Default routing fee limit: 0.5% of the amount, at least 10 sat (tiny payments pay base fees per hop). */
export function defaultFeeLimit(amount: Msat, ppm = 5_000n, minimum = 10_000n): Msat {
  const proportional = (amount * ppm) / 1_000_000n;
  return msat(proportional > minimum ? proportional : minimum);
}
