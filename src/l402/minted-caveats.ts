/**
 * The value a macaroon's minted caveats give `key`, for terms the gate locks into a credential
 * (a priority class and price, a subscription). Only the minted part of the macaroon can lock
 * terms: the gate mints them before the service's `_valid_until` caveat, and anything after the
 * first of those was appended by a holder (who can add caveats, never remove them). An appended
 * caveat of `key` must repeat the minted one exactly; one that is new or different is a
 * 'conflict', as are two different minted ones.
 */
export function mintedValue(
  caveats: readonly string[],
  service: string,
  key: string,
): string | undefined | 'conflict' {
  let value: string | undefined;
  let minted = true;
  for (const c of caveats) {
    const eq = c.indexOf('=');
    if (eq < 0) continue;
    const k = c.slice(0, eq).trim();
    if (k === `${service}_valid_until`) {
      minted = false;
      continue;
    }
    if (k !== key) continue;
    const v = c.slice(eq + 1).trim();
    if (minted ? value !== undefined && value !== v : value !== v) return 'conflict';
    value = v;
  }
  return value;
}
