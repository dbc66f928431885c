import { Type, type Static } from '@sinclair/typebox';
import { ConfigError } from '../../domain/errors.js';
import { msat, MAX_MSAT, type Msat } from '../../domain/msat.js';
import { lockCaveats, type LockedPriority } from '../../l402/priority-caveats.js';
import { BPS, demandFactorBps, multiplied } from './demand.js';

export { BPS, demandFactorBps, multiplied };

export type { LockedPriority };

/**
 * Priority pricing (docs/L402.md, "Priority pricing"): a request asks for a class with the
 * `Coulomb-Priority` header; its price is
 *
 *   ceil(base × classMultiplierBps × demandFactorBps / 10,000²)
 *
 * in exact integer msat, where the demand factor is the step of the service's current load
 * (in-flight requests against its configured capacity). A challenge locks the price it quoted
 * in the credential's macaroon.
 */

/** The request header naming the priority class asked for. */
export const PRIORITY_HEADER = 'coulomb-priority';

const ClassName = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' });

export const PrioritySchema = Type.Object(
  {
    /** The classes a request may ask for, each with its multiplier of the base price (bps, ≥ 10,000). */
    classes: Type.Record(
      ClassName,
      Type.Object(
        { multiplierBps: Type.Integer({ minimum: 10_000, maximum: 10_000_000 }) },
        { additionalProperties: false },
      ),
    ),
    /** The in-flight requests of the service that make a load of 100 %. */
    capacity: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    /**
     * Demand steps: from `fromPercent` of capacity in flight, the price is multiplied by
     * `factorBps` (≥ 10,000). Below the first step the factor is 10,000 (none).
     */
    demandSteps: Type.Optional(
      Type.Array(
        Type.Object(
          {
            fromPercent: Type.Integer({ minimum: 0, maximum: 100_000 }),
            factorBps: Type.Integer({ minimum: 10_000, maximum: 10_000_000 }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 16 },
      ),
    ),
    /** Requests one priority credential buys at the locked price (its invoice is price × this). */
    requestsPerCredential: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  },
  { additionalProperties: false },
);
export type PriorityConfig = Static<typeof PrioritySchema>;

export interface PriorityClass {
  name: string;
  multiplierBps: bigint;
  /** 0 for the cheapest class; a higher rank is a higher class. */
  rank: number;
}

export interface PriorityTerms {
  base: Msat;
  classes: Map<string, PriorityClass>;
  capacity: bigint;
  /** Ascending by `fromPercent`, factors non-decreasing. */
  steps: { fromPercent: bigint; factorBps: bigint }[];
  requestsPerCredential: bigint;
}

/** A service's priority terms, checked: ConfigError for what cannot be priced. */
export function compilePriority(
  service: string,
  cfg: PriorityConfig,
  base: Msat | undefined,
  metered: boolean,
  l402: boolean,
  free: boolean,
): PriorityTerms {
  if (free) throw new ConfigError(`service ${service}: a free service sells no priority`);
  if (base === undefined || metered)
    throw new ConfigError(
      `service ${service}: priority pricing multiplies pricePerRequestMsat: it needs pricePerRequestMsat and no models`,
    );
  if (!l402)
    throw new ConfigError(
      `service ${service}: priority credentials are L402 credentials: add "l402" to schemes`,
    );
  const entries = Object.entries(cfg.classes);
  if (entries.length === 0) throw new ConfigError(`service ${service}: priority needs at least one class`);
  const sorted = entries.sort((a, b) => a[1].multiplierBps - b[1].multiplierBps);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]![1].multiplierBps === sorted[i - 1]![1].multiplierBps)
      throw new ConfigError(
        `service ${service}: priority classes ${sorted[i - 1]![0]} and ${sorted[i]![0]} have the same multiplier: classes are ranked by it`,
      );
  const steps = (cfg.demandSteps ?? []).map((s) => ({
    fromPercent: BigInt(s.fromPercent),
    factorBps: BigInt(s.factorBps),
  }));
  for (let i = 1; i < steps.length; i++) {
    if (steps[i]!.fromPercent <= steps[i - 1]!.fromPercent)
      throw new ConfigError(`service ${service}: demandSteps must be in strictly ascending fromPercent`);
    if (steps[i]!.factorBps < steps[i - 1]!.factorBps)
      throw new ConfigError(`service ${service}: demandSteps factors must not fall as the load rises`);
  }
  return {
    base,
    classes: new Map(
      sorted.map(([name, c], rank) => [name, { name, multiplierBps: BigInt(c.multiplierBps), rank }]),
    ),
    capacity: BigInt(cfg.capacity),
    steps,
    requestsPerCredential: BigInt(cfg.requestsPerCredential ?? 1),
  };
}

export interface PriorityQuote {
  class: string;
  baseMsat: Msat;
  multiplierBps: bigint;
  demandFactorBps: bigint;
  /** The dynamic price rules' factors at this moment (10,000 each without rules). */
  windowBps: bigint;
  loadBps: bigint;
  inFlight: number;
  capacity: bigint;
  /** The price of one request at this class now. */
  priceMsat: Msat;
  /** What a credential for this class costs: price × requestsPerCredential. */
  creditMsat: Msat;
}

/** The price of one request of `className` at the current load; undefined for an unknown class. */
export function quotePriority(
  terms: PriorityTerms,
  className: string,
  inFlight: number,
  rules: { windowBps: bigint; loadBps: bigint } = { windowBps: BPS, loadBps: BPS },
): PriorityQuote | undefined {
  const c = terms.classes.get(className);
  if (!c) return undefined;
  const demand = demandFactorBps(terms, inFlight);
  const price = multiplied(terms.base, [c.multiplierBps, demand, rules.windowBps, rules.loadBps]);
  const credit = price * terms.requestsPerCredential;
  if (credit > MAX_MSAT) return undefined;
  return {
    class: c.name,
    baseMsat: terms.base,
    multiplierBps: c.multiplierBps,
    demandFactorBps: demand,
    windowBps: rules.windowBps,
    loadBps: rules.loadBps,
    inFlight,
    capacity: terms.capacity,
    priceMsat: msat(price),
    creditMsat: msat(credit),
  };
}

export function quoteView(q: PriorityQuote): Record<string, string | number> {
  return {
    class: q.class,
    baseMsat: q.baseMsat.toString(),
    multiplierBps: Number(q.multiplierBps),
    demandFactorBps: Number(q.demandFactorBps),
    windowBps: Number(q.windowBps),
    loadBps: Number(q.loadBps),
    inFlight: q.inFlight,
    capacity: Number(q.capacity),
    priceMsat: q.priceMsat.toString(),
    creditMsat: q.creditMsat.toString(),
  };
}

/** The caveats that lock a class and its price into a credential's macaroon. */
export function priorityCaveats(service: string, q: PriorityQuote): string[] {
  return lockCaveats(service, q.class, q.priceMsat);
}

export type PriorityDecision =
  /** No class asked, none locked: the service's ordinary per-request price. */
  | { kind: 'none' }
  /** Served at the credential's locked price (and class, if it has one). */
  | { kind: 'serve'; locked: LockedPriority }
  /** A credential for this class is needed: a 402 challenge for it. */
  | { kind: 'challenge'; class: string; message: string }
  | { kind: 'invalid'; code: 'PRIORITY_NOT_OFFERED' | 'UNKNOWN_PRIORITY_CLASS'; message: string };

/** The class a request asked for (the header's value, trimmed, lower-cased), if any. */
export function askedClass(header: string | string[] | undefined): string | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  const t = v?.trim().toLowerCase();
  return t ? t : undefined;
}

/**
 * What a request gets, from the class it asks for and its credential's locked class: a
 * credential serves its own class, and any lower class asked for, at its locked price; a higher
 * class (or any class, for a credential without one) needs a credential bought for it.
 */
export function decidePriority(
  terms: PriorityTerms | undefined,
  asked: string | undefined,
  locked: LockedPriority | undefined,
): PriorityDecision {
  if (asked !== undefined) {
    if (!terms)
      return {
        kind: 'invalid',
        code: 'PRIORITY_NOT_OFFERED',
        message: 'this service has no priority classes',
      };
    if (!terms.classes.has(asked))
      return {
        kind: 'invalid',
        code: 'UNKNOWN_PRIORITY_CLASS',
        message: `unknown priority class; this service offers ${[...terms.classes.keys()].join(', ')}`,
      };
  }
  if (locked) {
    if (asked === undefined || asked === locked.class) return { kind: 'serve', locked };
    const have = locked.class !== undefined ? terms!.classes.get(locked.class) : undefined;
    if (have && terms!.classes.get(asked)!.rank <= have.rank) return { kind: 'serve', locked };
    if (locked.class !== undefined)
      return {
        kind: 'challenge',
        class: asked,
        message: `this credential was bought for priority ${locked.class}: pay a challenge for ${asked}`,
      };
  }
  if (asked === undefined) return { kind: 'none' };
  return { kind: 'challenge', class: asked, message: `priority ${asked} needs a credential bought for it` };
}

/** The discovery document's description of a service's priority classes. */
export function priorityDiscovery(terms: PriorityTerms): Record<string, unknown> {
  return {
    header: 'Coulomb-Priority',
    baseMsat: terms.base.toString(),
    classes: Object.fromEntries(
      [...terms.classes.values()].map((c) => [
        c.name,
        { multiplierBps: Number(c.multiplierBps), rank: c.rank },
      ]),
    ),
    capacity: Number(terms.capacity),
    demandSteps: terms.steps.map((s) => ({
      fromPercent: Number(s.fromPercent),
      factorBps: Number(s.factorBps),
    })),
    requestsPerCredential: Number(terms.requestsPerCredential),
    formula: 'ceil(baseMsat × multiplierBps × demandFactorBps / 10000²)',
  };
}
