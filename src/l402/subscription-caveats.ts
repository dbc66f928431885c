import { msat, type Msat } from '../domain/msat.js';
import { mintedValue } from './minted-caveats.js';

/**
 * The terms of a subscription credential (docs/L402.md, "Subscriptions"), minted into its
 * macaroon as one caveat covered by the HMAC chain:
 *
 *   <service>_subscription=<period start>:<period end>:<included requests>:<overage msat>:<price msat>
 *
 * (start and end in unix seconds). The first period is the minted one; a renewal (the price
 * again) extends the credential by the same length.
 */
export interface SubscriptionCaveats {
  /** The first period, unix seconds. */
  periodStart: number;
  periodEnd: number;
  /** Requests served free in each period. */
  includedRequests: number;
  /** Charged from the credential's credit for each request beyond them. */
  overageMsat: Msat;
  /** What a period costs (the challenge's invoice; a renewal's). */
  priceMsat: Msat;
}

const KEY = (service: string): string => `${service}_subscription`;
const FORM = /^(\d{1,12}):(\d{1,12}):(\d{1,9}):(0|[1-9]\d{0,18}):([1-9]\d{0,18})$/;

export function subscriptionCaveats(service: string, t: SubscriptionCaveats): string[] {
  return [
    `${KEY(service)}=${t.periodStart}:${t.periodEnd}:${t.includedRequests}:${t.overageMsat}:${t.priceMsat}`,
  ];
}

/**
 * The subscription a macaroon's caveats give `service`: none, its terms, or 'conflict' (a
 * malformed one, or an appended one that does not repeat the minted one).
 */
export function subscriptionOf(
  caveats: readonly string[],
  service: string,
): SubscriptionCaveats | undefined | 'conflict' {
  const v = mintedValue(caveats, service, KEY(service));
  if (v === undefined || v === 'conflict') return v;
  const m = FORM.exec(v);
  if (!m) return 'conflict';
  const periodStart = Number(m[1]);
  const periodEnd = Number(m[2]);
  if (periodEnd <= periodStart) return 'conflict';
  return {
    periodStart,
    periodEnd,
    includedRequests: Number(m[3]),
    overageMsat: msat(m[4]!),
    priceMsat: msat(m[5]!),
  };
}
