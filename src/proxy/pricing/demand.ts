/** One in basis points: a multiplier of 10,000 bps leaves a price as it is. */
export const BPS = 10_000n;

/** The factor (bps) of `inFlight` requests: the last step whose threshold the load reaches, else 10,000. */
export function demandFactorBps(
  terms: { capacity: bigint; steps: readonly { fromPercent: bigint; factorBps: bigint }[] },
  inFlight: number,
): bigint {
  const load = BigInt(Math.max(0, Math.floor(inFlight))) * 100n;
  let factor = BPS;
  for (const s of terms.steps) if (load >= s.fromPercent * terms.capacity) factor = s.factorBps;
  return factor;
}

/** base × Π factors (each in bps), rounded up to the whole msat, once: exact. */
export function multiplied(base: bigint, factorsBps: readonly bigint[]): bigint {
  let num = base;
  let den = 1n;
  for (const f of factorsBps) {
    num *= f;
    den *= BPS;
  }
  return (num + den - 1n) / den;
}
