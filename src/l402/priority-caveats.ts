import { msat, type Msat } from '../domain/msat.js';

/**
 * The caveats that lock a credential's per-request price, and its priority class if it has one
 * (docs/L402.md, "Priority pricing" and "Dynamic price rules"): `<service>_price_msat=<msat>`
 * and `<service>_priority=<class>`, minted with the challenge, covered by the macaroon's HMAC
 * chain.
 */
export interface LockedPriority {
  class?: string;
  priceMsat: Msat;
}

export function lockCaveats(service: string, className: string | undefined, priceMsat: Msat): string[] {
  return [
    ...(className !== undefined ? [`${service}_priority=${className}`] : []),
    `${service}_price_msat=${priceMsat.toString()}`,
  ];
}

/**
 * The locked terms in a macaroon's caveats for `service`: none, one (a price, and maybe a
 * class), or 'conflict'. Only the minted part of the macaroon can lock terms: the gate mints the
 * lock caveats before the service's `_valid_until` caveat, and anything after the first of those
 * was appended by a holder (who can add caveats, never remove them). An appended lock caveat
 * must repeat a minted one exactly; one that is new (a price lock on a credential minted without
 * one, a class on a price-only credential) or different is a 'conflict'.
 */
export function lockedPriorityOf(
  caveats: readonly string[],
  service: string,
): LockedPriority | undefined | 'conflict' {
  let cls: string | undefined;
  let price: string | undefined;
  let minted = true;
  for (const c of caveats) {
    const eq = c.indexOf('=');
    if (eq < 0) continue;
    const key = c.slice(0, eq).trim();
    const value = c.slice(eq + 1).trim();
    if (key === `${service}_valid_until`) {
      minted = false;
    } else if (key === `${service}_priority`) {
      if (minted ? cls !== undefined && cls !== value : cls !== value) return 'conflict';
      cls = value;
    } else if (key === `${service}_price_msat`) {
      if (minted ? price !== undefined && price !== value : price !== value) return 'conflict';
      price = value;
    }
  }
  if (cls === undefined && price === undefined) return undefined;
  if (price === undefined || !/^(0|[1-9][0-9]{0,18})$/.test(price)) return 'conflict';
  return { ...(cls !== undefined ? { class: cls } : {}), priceMsat: msat(price) };
}
