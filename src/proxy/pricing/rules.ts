import { Type, type Static } from '@sinclair/typebox';
import { ConfigError } from '../../domain/errors.js';
import { BPS, demandFactorBps } from './demand.js';

/**
 * Dynamic price rules of a per-request service (docs/L402.md, "Dynamic price rules"): a
 * time-of-day multiplier (UTC windows) and a load multiplier (steps of in-flight requests against
 * a capacity), evaluated when a price is quoted or a challenge minted, and locked in the challenge.
 */

const HHMM = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'UTC, HH:MM' });

export const PriceRulesSchema = Type.Object(
  {
    /**
     * Time-of-day windows, UTC, `from` inclusive and `to` exclusive (a window with `from` after
     * `to` wraps midnight). When windows overlap, the highest multiplier applies.
     */
    windows: Type.Optional(
      Type.Array(
        Type.Object(
          {
            fromUtc: HHMM,
            toUtc: HHMM,
            multiplierBps: Type.Integer({ minimum: 10_000, maximum: 10_000_000 }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 48 },
      ),
    ),
    /** Load steps: from `fromPercent` of `capacity` in flight, × `factorBps`. */
    load: Type.Optional(
      Type.Object(
        {
          capacity: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
          steps: Type.Array(
            Type.Object(
              {
                fromPercent: Type.Integer({ minimum: 0, maximum: 100_000 }),
                factorBps: Type.Integer({ minimum: 10_000, maximum: 10_000_000 }),
              },
              { additionalProperties: false },
            ),
            { minItems: 1, maxItems: 16 },
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type PriceRulesConfig = Static<typeof PriceRulesSchema>;

export interface PriceRules {
  /** Minutes of the UTC day, `from` inclusive, `to` exclusive. */
  windows: { from: number; to: number; multiplierBps: bigint; label: string }[];
  load?: { capacity: bigint; steps: { fromPercent: bigint; factorBps: bigint }[] };
}

const minutes = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** A service's rules, checked: ConfigError for what cannot be priced. */
export function compileRules(service: string, cfg: PriceRulesConfig): PriceRules {
  const windows = (cfg.windows ?? []).map((w) => {
    if (w.fromUtc === w.toUtc)
      throw new ConfigError(`service ${service}: a price window needs fromUtc ≠ toUtc (${w.fromUtc})`);
    return {
      from: minutes(w.fromUtc),
      to: minutes(w.toUtc),
      multiplierBps: BigInt(w.multiplierBps),
      label: `${w.fromUtc}-${w.toUtc}`,
    };
  });
  const out: PriceRules = { windows };
  if (cfg.load) {
    const steps = cfg.load.steps.map((s) => ({
      fromPercent: BigInt(s.fromPercent),
      factorBps: BigInt(s.factorBps),
    }));
    for (let i = 1; i < steps.length; i++) {
      if (steps[i]!.fromPercent <= steps[i - 1]!.fromPercent)
        throw new ConfigError(
          `service ${service}: priceRules.load.steps must be in strictly ascending fromPercent`,
        );
      if (steps[i]!.factorBps < steps[i - 1]!.factorBps)
        throw new ConfigError(
          `service ${service}: priceRules.load.steps factors must not fall as the load rises`,
        );
    }
    out.load = { capacity: BigInt(cfg.load.capacity), steps };
  }
  return out;
}

/** The time-of-day multiplier (bps) at `now` (unix ms): the highest window containing it, else 10,000. */
export function windowFactorBps(rules: PriceRules, now: number): bigint {
  const d = new Date(now);
  const m = d.getUTCHours() * 60 + d.getUTCMinutes();
  let f = BPS;
  for (const w of rules.windows) {
    const inside = w.from < w.to ? m >= w.from && m < w.to : m >= w.from || m < w.to;
    if (inside && w.multiplierBps > f) f = w.multiplierBps;
  }
  return f;
}

/** The load multiplier (bps) of `inFlight` requests; 10,000 without load rules. */
export function loadFactorBps(rules: PriceRules, inFlight: number): bigint {
  return rules.load ? demandFactorBps(rules.load, inFlight) : BPS;
}

/** The rule factors at this moment (each in bps): what a challenge multiplies the base by. */
export function ruleFactors(
  rules: PriceRules | undefined,
  now: number,
  inFlight: number,
): { windowBps: bigint; loadBps: bigint } {
  if (!rules) return { windowBps: BPS, loadBps: BPS };
  return { windowBps: windowFactorBps(rules, now), loadBps: loadFactorBps(rules, inFlight) };
}

export function rulesDiscovery(rules: PriceRules): Record<string, unknown> {
  const hhmm = (m: number): string =>
    `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  return {
    windows: rules.windows.map((w) => ({
      fromUtc: hhmm(w.from),
      toUtc: hhmm(w.to),
      multiplierBps: Number(w.multiplierBps),
    })),
    ...(rules.load
      ? {
          load: {
            capacity: Number(rules.load.capacity),
            steps: rules.load.steps.map((s) => ({
              fromPercent: Number(s.fromPercent),
              factorBps: Number(s.factorBps),
            })),
          },
        }
      : {}),
    formula: 'ceil(baseMsat × windowBps × loadBps / 10000²), locked in the challenge',
  };
}
