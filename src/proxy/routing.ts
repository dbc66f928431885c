import { Type, type Static } from '@sinclair/typebox';
import { BoundedCache } from '../domain/lru.js';
import { ConfigError } from '../domain/errors.js';
import { msat, type Msat } from '../domain/msat.js';

/**
 * Budget-aware model routing (opt-in per service, docs/L402.md "Budget-aware model routing"): when
 * the credential of a metered request was paid by a Coulomb account (an internal payment of its
 * challenge invoice), the payer's available balance picks a survival tier of the service, and the
 * tier's model map says which model serves the request's `model`. Below the last tier the request
 * is refused before anything is reserved or sent upstream. Credentials paid over Lightning have
 * no payer account: their requests are served as asked.
 */

/** A model name as a routing map may hold it (it is also written in a response header). */
const MODEL_NAME = '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$';
const ModelName = Type.String({ pattern: MODEL_NAME });

export const RoutingTierSchema = Type.Object(
  {
    /** Shown in the response header (`tier=`). */
    name: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,31}$' }),
    /** The tier applies while the payer's available balance is at least this (msat). */
    minBalanceMsat: Type.String({ pattern: '^(0|[1-9][0-9]{0,18})$', description: 'msat, decimal string' }),
    /** Requested model → the model that serves it in this tier; models not listed are served as asked. */
    models: Type.Optional(Type.Record(ModelName, ModelName, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

export const RoutingSchema = Type.Object(
  {
    /**
     * From the highest threshold down (strictly decreasing). A payer below the last tier's
     * threshold is refused (`PAYER_BELOW_LAST_TIER`).
     */
    tiers: Type.Array(RoutingTierSchema, { minItems: 1, maxItems: 16 }),
  },
  { additionalProperties: false },
);
export type RoutingConfig = Static<typeof RoutingSchema>;

export interface RoutingTier {
  name: string;
  minBalance: Msat;
  models: ReadonlyMap<string, string>;
}

/** A service's routing ready for the hot path: tiers from the highest threshold down. */
export interface Routing {
  tiers: readonly RoutingTier[];
}

/** A routing config the proxy cannot apply (the admin API answers 400 `INVALID_ROUTING`). */
export class RoutingConfigError extends ConfigError {}

/**
 * Checks and compiles a service's routing: thresholds strictly decreasing, tier names unique,
 * no model mapped to itself, and every served model priced by the service (`priced`).
 */
/** A model's per-token prices, as the service's `models` give them. */
export interface TokenPrice {
  inputPerTokenMsat: bigint;
  outputPerTokenMsat: bigint;
}

export function compileRouting(
  service: string,
  config: RoutingConfig,
  priceOf: ((model: string) => TokenPrice | undefined) | undefined,
): Routing {
  const fail = (message: string): never => {
    throw new RoutingConfigError(`service ${service}: routing: ${message}`);
  };
  if (!priceOf) fail('routing needs per-token prices (models): it rewrites the model of metered requests');
  const names = new Set<string>();
  let above: bigint | undefined;
  const tiers = config.tiers.map((t, i): RoutingTier => {
    if (names.has(t.name)) fail(`tier names must be unique: ${t.name} appears twice`);
    names.add(t.name);
    let min: Msat = msat(0);
    try {
      min = msat(t.minBalanceMsat);
    } catch (err) {
      fail(`tier ${t.name}: ${(err as Error).message}`);
    }
    if (above !== undefined && min >= above)
      fail(`tier ${t.name}: thresholds must decrease strictly from the first tier to the last (tier ${i})`);
    above = min;
    const models = new Map<string, string>();
    for (const [requested, served] of Object.entries(t.models ?? {})) {
      if (!new RegExp(MODEL_NAME).test(requested) || !new RegExp(MODEL_NAME).test(served))
        fail(`tier ${t.name}: model names must match ${MODEL_NAME}`);
      if (requested === served) fail(`tier ${t.name}: ${requested} is mapped to itself`);
      const servedPrice = priceOf!(served);
      if (!servedPrice) fail(`tier ${t.name}: the service has no price for ${served}`);
      const askedPrice = priceOf!(requested);
      if (
        askedPrice &&
        servedPrice &&
        (servedPrice.inputPerTokenMsat > askedPrice.inputPerTokenMsat ||
          servedPrice.outputPerTokenMsat > askedPrice.outputPerTokenMsat)
      )
        // Routing saves a payer's balance: it never bills more than the model asked for (and quoted).
        fail(`tier ${t.name}: ${served} costs more per token than ${requested}`);
      models.set(requested, served);
    }
    return { name: t.name, minBalance: min, models };
  });
  return { tiers };
}

/** The tier of a balance: the first whose threshold it reaches; undefined below the last one. */
export function tierOf(routing: Routing, balance: bigint): RoutingTier | undefined {
  return routing.tiers.find((t) => balance >= t.minBalance);
}

/** What routing decided for one request. */
export type RouteDecision =
  /** No payer account (paid over Lightning), or no `model` to route (above the last tier): served as asked. */
  | { kind: 'unrouted' }
  | { kind: 'served'; tier: string; requested: string; served: string }
  | { kind: 'refused'; lastTier: string; minBalanceMsat: Msat };

/** The decision for a requested model at a payer's balance (pure). */
export function decide(routing: Routing, balance: bigint, requested: string): RouteDecision {
  const tier = tierOf(routing, balance);
  if (!tier) {
    const last = routing.tiers[routing.tiers.length - 1]!;
    return { kind: 'refused', lastTier: last.name, minBalanceMsat: last.minBalance };
  }
  return { kind: 'served', tier: tier.name, requested, served: tier.models.get(requested) ?? requested };
}

/** The response headers telling a routed request's tier and, when it changed, the model served. */
export const ROUTED_HEADER = 'coulomb-model-routed';
export const TIER_HEADER = 'coulomb-budget-tier';
export const REFUSED_CODE = 'PAYER_BELOW_LAST_TIER';
/** Only the proxy states these: an upstream's headers of these names are dropped. */
export const ROUTING_HEADERS = [ROUTED_HEADER, TIER_HEADER] as const;

export function routeHeaders(d: RouteDecision): Record<string, string> {
  if (d.kind !== 'served') return {};
  return {
    [TIER_HEADER]: d.tier,
    ...(d.served !== d.requested
      ? { [ROUTED_HEADER]: `${d.requested};served=${d.served};tier=${d.tier}` }
      : {}),
  };
}

/** The 403 body of a request refused below the last tier (the proxy's refusal shape). */
export function refusalBody(d: Extract<RouteDecision, { kind: 'refused' }>): object {
  return {
    error: {
      code: REFUSED_CODE,
      message: `the account that paid this credential has less than ${d.minBalanceMsat} msat available, below this service's last budget tier (${d.lastTier}); nothing was charged`,
      tier: d.lastTier,
      minBalanceMsat: d.minBalanceMsat.toString(),
    },
  };
}

/** What the router needs: who paid an invoice internally, and an account's available balance. */
export interface RouterDeps {
  /** The gateway account that paid this invoice internally; undefined if paid over Lightning. */
  payerOf(paymentHash: string): Promise<string | undefined>;
  /** The account's available balance (the ledger's figure, no history), undefined if none. */
  availableOf(accountId: string): Promise<bigint | undefined>;
}

/**
 * Finds the payer of a credential and decides its requests' models. A credential's payer never
 * changes once its invoice is settled, so it is cached by credential account (10,000, bounded);
 * the balance is read from the ledger at every request.
 */
export class BudgetRouter {
  private readonly payers = new BoundedCache<string, string | null>(10_000, Date.now, 0);

  constructor(private readonly deps: RouterDeps) {}

  /**
   * The payer account of a credential: `accountId` is its credit account (`l402:<token id>` or
   * `mpp:<payment hash>`), `paymentHash` the hash of its challenge invoice (L402).
   */
  async payerOf(accountId: string, paymentHash: string | undefined): Promise<string | undefined> {
    const known = this.payers.get(accountId);
    if (known !== undefined) return known ?? undefined;
    const hash = accountId.startsWith('mpp:') ? accountId.slice(4) : paymentHash;
    if (hash === undefined) return undefined;
    const payer = (await this.deps.payerOf(hash)) ?? null;
    this.payers.set(accountId, payer);
    return payer ?? undefined;
  }

  /**
   * Routes a metered request's body (its `model` is rewritten when the tier maps it): the
   * decision, after which the body holds the model to serve.
   */
  async route(
    routing: Routing,
    credential: { accountId: string; paymentHash?: string },
    body: Record<string, unknown>,
  ): Promise<RouteDecision> {
    const payer = await this.payerOf(credential.accountId, credential.paymentHash);
    if (payer === undefined) return { kind: 'unrouted' };
    const balance = await this.deps.availableOf(payer);
    if (balance === undefined) return { kind: 'unrouted' };
    const requested = body['model'];
    if (typeof requested !== 'string') {
      // No model to map (the service's '*' price may still serve it): the payer's tier still
      // holds — below the last one it is refused like any other request.
      const d = decide(routing, balance, '');
      return d.kind === 'refused' ? d : { kind: 'unrouted' };
    }
    const d = decide(routing, balance, requested);
    if (d.kind === 'served' && d.served !== requested) body['model'] = d.served;
    return d;
  }
}

/** The routing as the discovery document shows it. */
export function routingView(r: Routing): object {
  return {
    tiers: r.tiers.map((t) => ({
      name: t.name,
      minBalanceMsat: t.minBalance.toString(),
      models: Object.fromEntries(t.models),
    })),
  };
}
