import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from '../domain/errors.js';
import { msat, type Msat } from '../domain/msat.js';
import { MppServiceSchema } from './mpp-config.js';
import type { MppTerms } from './mpp.js';
import { compileRouting, RoutingSchema, type Routing } from './routing.js';
import { compilePriority, PrioritySchema, type PriorityTerms } from './pricing/priority.js';
import { compileRules, PriceRulesSchema, type PriceRules } from './pricing/rules.js';
import { compileSubscription, SubscriptionSchema, type SubscriptionTerms } from './pricing/subscription.js';

const Amount = Type.String({ pattern: '^(0|[1-9][0-9]*)$', description: 'msat, decimal string' });

const ModelPrice = Type.Object(
  { inputPerTokenMsat: Amount, outputPerTokenMsat: Amount },
  { additionalProperties: false },
);

const RateLimit = Type.Object(
  {
    requests: Type.Integer({ minimum: 1 }),
    perSeconds: Type.Number({ minimum: 0.001, description: 'seconds (> 0)' }),
  },
  { additionalProperties: false },
);
export type RateLimit = Static<typeof RateLimit>;

/**
 * Challenges cost an LND invoice each, so each client address may ask for this many (a token
 * bucket) unless the proxy config or a service says otherwise.
 */
export const DEFAULT_CHALLENGE_RATE_LIMIT: RateLimit = { requests: 20, perSeconds: 1 };

export const ServiceSchema = Type.Object(
  {
    name: Type.String({
      pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
      description: 'used in caveats: lowercase letters, digits, - and _',
    }),
    /** Requests match when the host matches this regexp (if set) and the path starts with pathPrefix. */
    hostRegexp: Type.Optional(Type.String({ minLength: 1 })),
    pathPrefix: Type.String({ pattern: '^/', default: '/' }),
    upstream: Type.String({ pattern: '^https?://' }),
    mode: Type.Union([Type.Literal('paid'), Type.Literal('free'), Type.Literal('freebie')]),
    /** For mode freebie: requests per client IP before payment is asked for. */
    freeRequests: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Price of one request (charged from the credential's credit). */
    pricePerRequestMsat: Type.Optional(Amount),
    /** Per-token prices by model for OpenAI-compatible endpoints; "*" is the default model. */
    models: Type.Optional(Type.Record(Type.String(), ModelPrice)),
    /** Prepaid credit a challenge sells (the invoice amount). */
    creditMsat: Amount,
    capabilities: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9_-]+$' }))),
    lifetimeSeconds: Type.Integer({ minimum: 1, default: 86_400 }),
    /** Per-credential token bucket. */
    rateLimit: Type.Optional(RateLimit),
    /**
     * Challenges (402s, each a new invoice) per client address for this service, in a bucket of
     * its own; without it the service shares the proxy-wide `challengeRateLimit` bucket.
     */
    challengeRateLimit: Type.Optional(RateLimit),
    /** Headers added upstream (e.g. the provider's API key); never shown to clients. */
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    /** Only these path regexps are forwarded (all when absent). */
    allowPaths: Type.Optional(Type.Array(Type.String())),
    description: Type.Optional(Type.String()),
    /**
     * Also send the L402 specification's newer challenge form, `L402 version="0", token="…",
     * invoice="…"`, after the two `macaroon=` lines (off by default until clients follow).
     */
    l402TokenForm: Type.Optional(Type.Boolean()),
    /** The payment schemes offered in a 402: L402, MPP (`Payment`), or both (L402 first). */
    schemes: Type.Optional(
      Type.Array(Type.Union([Type.Literal('l402'), Type.Literal('mpp')]), { minItems: 1, uniqueItems: true }),
    ),
    /** MPP (`Payment` scheme) settings of this service; see docs/MPP.md. */
    mpp: Type.Optional(MppServiceSchema),
    /** Budget-aware model routing by the paying account's balance; see docs/L402.md. */
    routing: Type.Optional(RoutingSchema),
    /** Priority classes sold at base × class multiplier × demand factor (docs/L402.md, "Priority pricing"). */
    priority: Type.Optional(PrioritySchema),
    /** Time-of-day and load multipliers of the per-request price (docs/L402.md, "Dynamic price rules"). */
    priceRules: Type.Optional(PriceRulesSchema),
    /**
     * A credential for a period with included requests and an overage price, renewable
     * (docs/L402.md, "Subscriptions"); `creditMsat` is then what an overage-credit invoice sells.
     */
    subscription: Type.Optional(SubscriptionSchema),
  },
  { additionalProperties: false },
);

export const ProxyConfigSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8403 }),
    services: Type.Array(ServiceSchema, { minItems: 1 }),
    /** Challenges per client address, shared by the services without their own (default 20 a second). */
    challengeRateLimit: Type.Optional(RateLimit),
    /** The MPP realm (default: the proxy's host:port). */
    mppRealm: Type.Optional(Type.String({ minLength: 1 })),
    /** The most the gateway spends in routing fees on an MPP session's refund (msat, default 0). */
    sessionRefundMaxFeeMsat: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,12})$' })),
  },
  { additionalProperties: false },
);

export type ServiceConfig = Static<typeof ServiceSchema>;
export type ProxyConfig = Static<typeof ProxyConfigSchema>;

export interface ModelPricing {
  inputPerTokenMsat: Msat;
  outputPerTokenMsat: Msat;
}

/** A service ready for the hot path: regexps compiled, amounts parsed. */
export interface Service {
  config: ServiceConfig;
  name: string;
  host?: RegExp;
  pathPrefix: string;
  upstream: URL;
  allow?: RegExp[];
  pricePerRequest?: Msat;
  models?: Map<string, ModelPricing>;
  credit: Msat;
  /** The schemes of its 402s (`l402` when the config names none). */
  schemes: { l402: boolean; mpp: boolean };
  /** The MPP terms, when the service offers MPP. */
  mpp?: MppTerms;
  /** Budget-aware model routing (metered requests of credentials paid by an account). */
  routing?: Routing;
  /** The priority classes, when the service sells them. */
  priority?: PriorityTerms;
  /** The dynamic price rules, when the service has them. */
  rules?: PriceRules;
  /** The subscription terms, when the service sells subscriptions (`pricePerRequest` is then the overage). */
  subscription?: SubscriptionTerms;
}

/** An HTTP field name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What Node sends in a field value: tab, visible ASCII, space, obs-text (no CR, LF, NUL or controls). */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The upstream as a URL, or a ConfigError naming the service (never the URL: it may hold a password). */
function upstreamUrl(s: ServiceConfig): URL {
  let url: URL;
  try {
    url = new URL(s.upstream);
  } catch {
    throw new ConfigError(`service ${s.name}: upstream is not a valid http(s) URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname)
    throw new ConfigError(`service ${s.name}: upstream is not a valid http(s) URL`);
  return url;
}

/** A service's config made ready for the hot path; ConfigError (never another error) for what cannot be served. */
export function compile(s: ServiceConfig): Service {
  const re = (src: string, what: string): RegExp => {
    try {
      return new RegExp(src);
    } catch (err) {
      throw new ConfigError(`service ${s.name}: invalid ${what} regexp: ${(err as Error).message}`);
    }
  };
  if (
    s.mode !== 'free' &&
    s.pricePerRequestMsat === undefined &&
    s.models === undefined &&
    s.subscription === undefined
  ) {
    throw new ConfigError(
      `service ${s.name}: a paid service needs pricePerRequestMsat, models or subscription`,
    );
  }
  if (s.mode === 'freebie' && s.freeRequests === undefined)
    throw new ConfigError(`service ${s.name}: mode freebie needs freeRequests`);
  for (const [name, value] of Object.entries(s.headers ?? {})) {
    if (!HEADER_NAME.test(name))
      throw new ConfigError(
        `service ${s.name}: upstream header name ${JSON.stringify(name)} is not an HTTP token`,
      );
    if (!HEADER_VALUE.test(value))
      throw new ConfigError(
        `service ${s.name}: the value of upstream header ${name} has characters HTTP cannot carry (CR, LF, NUL, controls)`,
      );
  }
  const out: Service = {
    config: s,
    name: s.name,
    pathPrefix: s.pathPrefix,
    upstream: upstreamUrl(s),
    credit: msat(s.creditMsat),
    schemes: { l402: (s.schemes ?? ['l402']).includes('l402'), mpp: (s.schemes ?? []).includes('mpp') },
  };
  const mpp = mppTermsOf(s, out);
  if (mpp) out.mpp = mpp;
  if (s.hostRegexp) out.host = re(s.hostRegexp, 'host');
  if (s.allowPaths) out.allow = s.allowPaths.map((p) => re(p, 'path'));
  if (s.pricePerRequestMsat !== undefined) out.pricePerRequest = msat(s.pricePerRequestMsat);
  if (s.models) {
    out.models = new Map(
      Object.entries(s.models).map(([k, v]) => [
        k,
        { inputPerTokenMsat: msat(v.inputPerTokenMsat), outputPerTokenMsat: msat(v.outputPerTokenMsat) },
      ]),
    );
  }
  if (s.routing) {
    const models = out.models;
    out.routing = compileRouting(s.name, s.routing, models && ((m) => models.get(m) ?? models.get('*')));
  }
  if (s.priority)
    out.priority = compilePriority(
      s.name,
      s.priority,
      out.pricePerRequest,
      s.models !== undefined,
      out.schemes.l402,
      s.mode === 'free',
    );
  if (s.priceRules) {
    if (
      s.mode === 'free' ||
      out.pricePerRequest === undefined ||
      s.models !== undefined ||
      !out.schemes.l402 ||
      out.mpp
    )
      throw new ConfigError(
        `service ${s.name}: dynamic price rules apply to a paid per-request service sold over L402 only (pricePerRequestMsat, no models, no mpp)`,
      );
    out.rules = compileRules(s.name, s.priceRules);
  }
  if (s.subscription) {
    out.subscription = compileSubscription(s.name, s.subscription, {
      mode: s.mode,
      pricePerRequest: s.pricePerRequestMsat !== undefined,
      models: s.models !== undefined,
      l402Only: out.schemes.l402 && !out.schemes.mpp,
      priority: s.priority !== undefined,
      rules: s.priceRules !== undefined,
      routing: s.routing !== undefined,
      lifetimeSeconds: s.lifetimeSeconds,
      creditMsat: out.credit,
    });
    // Requests beyond the quota are charged as per-request ones, at the overage.
    out.pricePerRequest = out.subscription.overageMsat;
  }
  return out;
}

/** A service's MPP terms: intents default to charge and session (session only when metered). */
function mppTermsOf(s: ServiceConfig, out: Service): MppTerms | undefined {
  if (!out.schemes.mpp) {
    if (s.mpp) throw new ConfigError(`service ${s.name}: mpp settings need "mpp" in schemes`);
    return undefined;
  }
  if (s.mode === 'free') throw new ConfigError(`service ${s.name}: a free service sells nothing over MPP`);
  const perRequest = s.pricePerRequestMsat !== undefined && s.models === undefined;
  const intents = s.mpp?.intents ?? (perRequest ? ['charge', 'session'] : ['session']);
  if (intents.includes('charge') && !perRequest)
    throw new ConfigError(
      `service ${s.name}: the MPP charge intent buys one request at a fixed price: it needs pricePerRequestMsat (and no models); offer session for per-token billing`,
    );
  return {
    name: s.name,
    intents,
    ...(perRequest ? { pricePerRequestMsat: msat(s.pricePerRequestMsat!) } : {}),
    creditMsat: msat(s.creditMsat),
    depositMultiplier: s.mpp?.depositMultiplier ?? 20,
    idleTimeoutSeconds: s.mpp?.idleTimeoutSeconds ?? 300,
  };
}

/**
 * The order in which requests are matched against services, the same for the config file, the
 * services changed live and after a restart: the most specific path prefix first (longer before
 * shorter), then, for the same prefix, the services with a `hostRegexp` before those without,
 * then by name. The first whose prefix (and host) fits serves the request.
 */
export function matchingOrder<T>(items: readonly T[], serviceOf: (item: T) => Service): T[] {
  const rank = (a: Service, b: Service): number =>
    b.pathPrefix.length - a.pathPrefix.length ||
    Number(b.host !== undefined) - Number(a.host !== undefined) ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return [...items].sort((a, b) => rank(serviceOf(a), serviceOf(b)));
}

/** Validates a proxy config (from YAML/JSON) with messages naming the field at fault. */
export function parseProxyConfig(raw: unknown): { config: ProxyConfig; services: Service[] } {
  const withDefaults = Value.Default(ProxyConfigSchema, structuredClone(raw));
  const problems = [...Value.Errors(ProxyConfigSchema, withDefaults)].map(
    (e) => `${e.path || '/'}: ${e.message}`,
  );
  if (problems.length)
    throw new ConfigError(`invalid proxy configuration:\n  ${problems.slice(0, 10).join('\n  ')}`, {
      problems,
    });
  const config = withDefaults as ProxyConfig;
  const names = new Set<string>();
  for (const s of config.services) {
    if (names.has(s.name)) throw new ConfigError(`service names must be unique: ${s.name} appears twice`);
    names.add(s.name);
  }
  return { config, services: config.services.map(compile) };
}

/** The sample service `npm start` serves in front of the sample upstream. */
export function sampleProxyConfig(upstream: string, port = 8403): unknown {
  return {
    port,
    services: [
      {
        name: 'sample-llm',
        description: 'SAMPLE: an OpenAI-compatible sample upstream, billed per token',
        pathPrefix: '/v1/',
        upstream,
        mode: 'paid',
        models: { '*': { inputPerTokenMsat: '1000', outputPerTokenMsat: '2000' } },
        creditMsat: '1000000',
        capabilities: ['chat', 'completions', 'embeddings'],
        lifetimeSeconds: 86_400,
        rateLimit: { requests: 20, perSeconds: 1 },
      },
    ],
  };
}
