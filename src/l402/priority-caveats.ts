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
 * class, each once or repeated identically), or 'conflict': a caveat a holder appends can never
 * change what the minted one says.
 */
export function lockedPriorityOf(
  caveats: readonly string[],
  service: string,
): LockedPriority | undefined | 'conflict' {
  let cls: string | undefined;
  let price: string | undefined;
  for (const c of caveats) {
    const eq = c.indexOf('=');
    if (eq < 0) continue;
    const key = c.slice(0, eq).trim();
    const value = c.slice(eq + 1).trim();
    if (key === `${service}_priority`) {
      if (cls !== undefined && cls !== value) return 'conflict';
      cls = value;
    } else if (key === `${service}_price_msat`) {
      if (price !== undefined && price !== value) return 'conflict';
      price = value;
    }
  }
  if (cls === undefined && price === undefined) return undefined;
  if (price === undefined || !/^(0|[1-9][0-9]{0,18})$/.test(price)) return 'conflict';
  return { ...(cls !== undefined ? { class: cls } : {}), priceMsat: msat(price) };
}
