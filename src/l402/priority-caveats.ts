import { msat, type Msat } from '../domain/msat.js';
import { mintedValue } from './minted-caveats.js';

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
 * class), or 'conflict' (see `mintedValue`: only minted caveats lock terms, appended ones must
 * repeat them).
 */
export function lockedPriorityOf(
  caveats: readonly string[],
  service: string,
): LockedPriority | undefined | 'conflict' {
  const cls = mintedValue(caveats, service, `${service}_priority`);
  const price = mintedValue(caveats, service, `${service}_price_msat`);
  if (cls === 'conflict' || price === 'conflict') return 'conflict';
  if (cls === undefined && price === undefined) return undefined;
  if (price === undefined || !/^(0|[1-9][0-9]{0,18})$/.test(price)) return 'conflict';
  return { ...(cls !== undefined ? { class: cls } : {}), priceMsat: msat(price) };
}
