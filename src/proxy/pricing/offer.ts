import { lockCaveats } from '../../l402/priority-caveats.js';
import { msat, MAX_MSAT, type Msat } from '../../domain/msat.js';
import type { Service } from '../config.js';
import { multiplied } from './demand.js';
import { priorityCaveats, quotePriority, quoteView } from './priority.js';
import { ruleFactors } from './rules.js';
import { subscriptionCaveats } from '../../l402/subscription-caveats.js';
import { firstPeriod, subscriptionView } from './subscription.js';

/** What a challenge sells when its price is computed now: the invoice amount and the lock. */
export interface Offer {
  creditMsat: Msat;
  caveats: string[];
  /** The 402 body's description of the price (`priority` or `price`). */
  body: Record<string, unknown>;
}

/** The per-request price of a service with dynamic rules at this moment (exact, rounded up). */
export function dynamicPrice(
  service: Service,
  inFlight: number,
  now: number,
): { priceMsat: Msat; windowBps: bigint; loadBps: bigint } | undefined {
  if (!service.rules || service.pricePerRequest === undefined) return undefined;
  const f = ruleFactors(service.rules, now, inFlight);
  const price = multiplied(service.pricePerRequest, [f.windowBps, f.loadBps]);
  if (price > MAX_MSAT) return undefined;
  return { priceMsat: msat(price), ...f };
}

export function dynamicView(
  d: NonNullable<ReturnType<typeof dynamicPrice>>,
): Record<string, string | number> {
  return { priceMsat: d.priceMsat.toString(), windowBps: Number(d.windowBps), loadBps: Number(d.loadBps) };
}

/**
 * The offer of a challenge whose price depends on the moment: a priority class (its price ×
 * requests per credential, class and price locked), or an ordinary credential of a service with
 * dynamic rules (its usual credit, the per-request price locked), or a subscription (its price,
 * the first period starting now and the terms locked). Undefined when the price is
 * the service's fixed one; 'unknown-class' for a class the service does not sell.
 */
export function offerFor(
  service: Service,
  priorityClass: string | undefined,
  inFlight: number,
  now: number,
): Offer | undefined | 'unknown-class' {
  if (service.subscription && priorityClass === undefined) {
    const terms = firstPeriod(service.subscription, now);
    return {
      creditMsat: service.subscription.priceMsat,
      caveats: subscriptionCaveats(service.name, terms),
      body: {
        subscription: {
          ...subscriptionView(service.subscription),
          periodStart: terms.periodStart,
          periodEnd: terms.periodEnd,
        },
      },
    };
  }
  if (priorityClass !== undefined) {
    const q = service.priority
      ? quotePriority(service.priority, priorityClass, inFlight, ruleFactors(service.rules, now, inFlight))
      : undefined;
    if (!q) return 'unknown-class';
    return {
      creditMsat: q.creditMsat,
      caveats: priorityCaveats(service.name, q),
      body: { priority: quoteView(q) },
    };
  }
  const d = dynamicPrice(service, inFlight, now);
  if (!d) return undefined;
  return {
    // Never less than one request at the locked price: a credential that cannot pay for its
    // first request would answer every request with a new 402 for the same too-small credit.
    creditMsat: d.priceMsat > service.credit ? d.priceMsat : service.credit,
    caveats: lockCaveats(service.name, undefined, d.priceMsat),
    body: { price: dynamicView(d) },
  };
}
