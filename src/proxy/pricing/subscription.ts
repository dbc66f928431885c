import { Type, type Static } from '@sinclair/typebox';
import { ConfigError } from '../../domain/errors.js';
import { MAX_MSAT, msat, type Msat } from '../../domain/msat.js';
import type { SubscriptionCaveats } from '../../l402/subscription-caveats.js';

/**
 * Subscription pricing (docs/L402.md, "Subscriptions"): a credential bought for a period, with
 * a number of requests included and a price per request beyond them (overage, charged from the
 * credential's prepaid credit), renewable for the same price.
 */

/** The response header telling a subscription's use: `used=N, included=M, period-end=<unix s>`. */
export const SUBSCRIPTION_HEADER = 'coulomb-subscription';

const Amount = Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$', description: 'msat, decimal string' });

export const SubscriptionSchema = Type.Object(
  {
    /** The length of a period (and of each renewal), seconds. */
    periodSeconds: Type.Integer({ minimum: 1, maximum: 10 * 366 * 86_400 }),
    /** What a period costs: the challenge's invoice, and a renewal's. */
    priceMsat: Amount,
    /** Requests served free in each period. */
    includedRequests: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    /** Charged from the credential's prepaid credit for each request beyond them. */
    overageMsatPerRequest: Amount,
  },
  { additionalProperties: false },
);
export type SubscriptionConfig = Static<typeof SubscriptionSchema>;

export interface SubscriptionTerms {
  periodSeconds: number;
  priceMsat: Msat;
  includedRequests: number;
  overageMsat: Msat;
}

/** What the rest of a service's config says, for the checks a subscription needs. */
export interface SubscriptionContext {
  mode: 'paid' | 'free' | 'freebie';
  pricePerRequest: boolean;
  models: boolean;
  l402Only: boolean;
  priority: boolean;
  rules: boolean;
  routing: boolean;
  lifetimeSeconds: number;
  /** What an overage-credit invoice sells (the service's creditMsat). */
  creditMsat: bigint;
}

/** A service's subscription terms, checked: ConfigError (naming the service) for what cannot be sold. */
export function compileSubscription(
  service: string,
  cfg: SubscriptionConfig,
  ctx: SubscriptionContext,
): SubscriptionTerms {
  const bad = (why: string): never => {
    throw new ConfigError(`service ${service}: subscription: ${why}`);
  };
  if (ctx.mode !== 'paid') bad('a subscription service is mode paid');
  if (ctx.pricePerRequest || ctx.models)
    bad(
      'the price of a request is its overage (overageMsatPerRequest): no pricePerRequestMsat or models beside it',
    );
  if (!ctx.l402Only) bad('subscriptions are L402 credentials: schemes [l402] only');
  if (ctx.priority || ctx.rules || ctx.routing) bad('no priority, priceRules or routing beside it');
  if (BigInt(cfg.priceMsat) > MAX_MSAT || BigInt(cfg.overageMsatPerRequest) > MAX_MSAT)
    bad('priceMsat and overageMsatPerRequest are at most 21M BTC');
  if (cfg.priceMsat === '0') bad('priceMsat must be positive');
  if (cfg.overageMsatPerRequest === '0')
    bad('overageMsatPerRequest must be positive (requests beyond the quota are charged)');
  if (ctx.creditMsat < BigInt(cfg.overageMsatPerRequest))
    bad('creditMsat (what an overage-credit invoice sells) must pay for at least one overage request');
  if (ctx.lifetimeSeconds < cfg.periodSeconds)
    bad(
      `lifetimeSeconds (${ctx.lifetimeSeconds}) must cover at least one period (${cfg.periodSeconds}): the credential must outlive its period to be renewed`,
    );
  return {
    periodSeconds: cfg.periodSeconds,
    priceMsat: msat(cfg.priceMsat),
    includedRequests: cfg.includedRequests,
    overageMsat: msat(cfg.overageMsatPerRequest),
  };
}

/** The caveats' terms of a subscription bought now (unix ms): the first period starts now. */
export function firstPeriod(terms: SubscriptionTerms, nowMs: number): SubscriptionCaveats {
  const start = Math.floor(nowMs / 1000);
  return {
    periodStart: start,
    periodEnd: start + terms.periodSeconds,
    includedRequests: terms.includedRequests,
    overageMsat: terms.overageMsat,
    priceMsat: terms.priceMsat,
  };
}

/** The subscription in the discovery document and quotes: decimal strings for msat. */
export function subscriptionView(terms: SubscriptionTerms): Record<string, string | number> {
  return {
    periodSeconds: terms.periodSeconds,
    priceMsat: terms.priceMsat.toString(),
    includedRequests: terms.includedRequests,
    overageMsatPerRequest: terms.overageMsat.toString(),
  };
}

/** A subscription's period as it stands (unix seconds) and its use in it. */
export interface Period {
  periodStart: number;
  periodEnd: number;
  used: number;
}

export type Use =
  /** Within the quota: served free, counted. */
  | { kind: 'included' }
  /** Beyond it, with credit for the overage: charged, counted. */
  | { kind: 'overage'; priceMsat: Msat }
  /** Beyond it, without the credit: nothing counted. */
  | { kind: 'credit-required'; priceMsat: Msat }
  /** The period is over: nothing counted. */
  | { kind: 'renewal-required' };

/**
 * What one request of a subscription is, now (unix ms), with `available` credit: the decision
 * and the count in one synchronous step (`period.used` is increased for a request served), so
 * concurrent requests never get more than `includedRequests` free in a period.
 */
export function takeUse(
  period: Period,
  terms: Pick<SubscriptionCaveats, 'includedRequests' | 'overageMsat'>,
  nowMs: number,
  available: bigint,
): Use {
  if (nowMs >= period.periodEnd * 1000) return { kind: 'renewal-required' };
  if (period.used < terms.includedRequests) {
    period.used += 1;
    return { kind: 'included' };
  }
  if (available < terms.overageMsat) return { kind: 'credit-required', priceMsat: terms.overageMsat };
  period.used += 1;
  return { kind: 'overage', priceMsat: terms.overageMsat };
}

export type SubscriptionRefusal = 'renewal-required' | 'credit-required';

/**
 * The 402 body of a subscription that needs paying: its renewal (the period is over) or
 * overage credit (the quota is used and the credit is short), with the invoice that pays it
 * into the same credential.
 */
export function refusalBody(
  kind: SubscriptionRefusal,
  period: Period,
  terms: Pick<SubscriptionCaveats, 'includedRequests' | 'overageMsat' | 'priceMsat'>,
  invoice: { request: string; paymentHash: string },
  amount: Msat,
): Record<string, unknown> {
  const renewal = kind === 'renewal-required';
  return {
    error: renewal
      ? {
          code: 'SUBSCRIPTION_RENEWAL_REQUIRED',
          message: 'the period of this subscription is over: pay the invoice to renew it, then retry',
        }
      : {
          code: 'SUBSCRIPTION_CREDIT_REQUIRED',
          message:
            'the requests included in this period are used and the credit for overage is short: pay the invoice to add credit, then retry',
        },
    invoice: invoice.request,
    paymentHash: invoice.paymentHash,
    amountMsat: amount.toString(),
    subscription: {
      used: period.used,
      includedRequests: terms.includedRequests,
      periodStart: period.periodStart,
      periodEnd: period.periodEnd,
      priceMsat: terms.priceMsat.toString(),
      overageMsatPerRequest: terms.overageMsat.toString(),
    },
  };
}

/** The `Coulomb-Subscription` header's value. */
export function useHeader(period: Period, included: number): string {
  return `used=${period.used}, included=${included}, period-end=${period.periodEnd}`;
}
