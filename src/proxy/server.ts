import { EventEmitter } from 'node:events';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Readable } from 'node:stream';
import { Agent as UpstreamAgent, type Dispatcher } from 'undici';
import { USAGE, usageMemo } from './usage-orphans.js';
import { HOP_BY_HOP } from '../net/hop-by-hop.js';
import { msat, type Msat } from '../domain/msat.js';
import { AppError } from '../domain/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf } from '../ledger/types.js';
import type { L402Gate } from '../l402/gate.js';
import {
  DEFAULT_CHALLENGE_RATE_LIMIT,
  matchingOrder,
  type ModelPricing,
  type RateLimit,
  type Service,
} from './config.js';
import {
  closingEvents,
  costOf,
  estimateTokens,
  isDoneEvent,
  METERED_PATHS,
  pricingFor,
  promptText,
  sseComment,
  StreamMeter,
  worstCase,
  type Usage,
} from './metering.js';
import { canonicalTarget, type CanonicalTarget } from './canonical-target.js';
import { ChargeBatcher, type ChargeState } from './charge-batcher.js';
import { PassThrough } from './pass-through.js';
import { RateLimiter } from './rate-limit.js';
import { parseCredential } from '../l402/mpp.js';
import type { MppGate } from './mpp.js';
import { closeAnswer, closeUnrefunded, problem, sendProblem, type ProxyRefunds } from './mpp-http.js';
import { RefundError, type RefundDestination } from '../l402/refund.js';
import { refusalBody, routeHeaders, ROUTING_HEADERS, routingView, type BudgetRouter } from './routing.js';
import { LoadTracker } from './pricing/load.js';
import {
  askedClass,
  decidePriority,
  PRIORITY_HEADER,
  priorityDiscovery,
  quotePriority,
  quoteView,
} from './pricing/priority.js';
import { dynamicPrice, dynamicView, offerFor } from './pricing/offer.js';
import { ruleFactors, rulesDiscovery } from './pricing/rules.js';
import {
  refusalBody as subscriptionRefusalBody,
  SUBSCRIPTION_HEADER,
  subscriptionView,
  takeUse,
  useHeader,
  type SubscriptionRefusal,
} from './pricing/subscription.js';
import { SubscriptionBook, type Subscriber, type SubscriptionRecord } from './subscriptions.js';

/**
 * What the proxy reports as it works (statistics and metrics listen here; the proxy knows
 * neither). Each is called synchronously and must not throw.
 */
export interface ProxyHooks {
  /**
   * A request was answered (or its client went away during the answer): its service (none when
   * no service matched), status and duration.
   */
  answered?(e: { service?: string; status: number; seconds: number; paid: boolean }): void;
  /** A 402 challenge (a new invoice) went out. */
  challenged?(service: string): void;
  /** A paid request's final charge is durable (0 when nothing was charged). */
  charged?(service: string, amount: Msat): void;
}

export interface ProxyDeps {
  /** The services (fixed), unless `catalog` is given. */
  services: readonly Service[];
  /** The live services (changed by the admin API): read on every request instead of `services`. */
  catalog?: { current(): readonly Service[] };
  hooks?: ProxyHooks;
  gate: L402Gate;
  ledger: Ledger;
  log: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  /** Largest request body forwarded (bytes). */
  maxBodyBytes?: number;
  /** Challenges per client address for the services without their own limit (default 20/s). */
  challengeRateLimit?: RateLimit;
  /** The MPP (`Payment` scheme) side, for services that offer it. */
  mpp?: MppGate;
  /** Closing credentials with a refund of their unused credit (`POST /l402/refund`, MPP close). */
  refunds?: ProxyRefunds;
  /** Budget-aware model routing of the services that configure it (`routing.ts`). */
  router?: BudgetRouter;
  /** The clock of dynamic price rules (unix ms; default Date.now). */
  now?: () => number;
  /** This instance's id on a store several instances share: named in metered reservations (`usageMemo`). */
  instanceId?: string;
}

/**
 * Not forwarded upstream: the client's credential, what the upstream client sets itself (host,
 * length), and `expect` (the body is read whole before it goes upstream).
 */
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'host', 'authorization', 'content-length', 'expect']);
const CREDIT_HEADER = 'x-l402-credit-remaining-msat';
/**
 * Not passed back: hop-by-hop headers (the upstream's content-length stays when the body does),
 * and the credit figure and the routing headers, which only the proxy may state.
 */
const RESPONSE_DROP = new Set([...HOP_BY_HOP, CREDIT_HEADER, SUBSCRIPTION_HEADER, ...ROUTING_HEADERS]);
/** The SSE comment that carries the final figure in a metered stream, just before `data: [DONE]`. */
const CREDIT_COMMENT = 'coulomb-credit-remaining-msat';

/**
 * The head of a response to the client, as a flat list (written as it is by `writeHead`): the
 * upstream's headers but the hop-by-hop ones and those the proxy states itself, then the proxy's
 * own, and an MPP receipt on success (the payer's own: never kept by a shared cache). A metered
 * response tells its credit after the worst-case reservation; the final figure, known only once
 * the usage is read, follows as a trailer (so the body is sent chunked, without its length).
 */
function responseHead(
  status: number,
  given: IncomingHttpHeaders,
  billing: { headers: Record<string, string>; receipt?: string } | undefined,
  metered: boolean,
): (string | string[])[] {
  const own = billing?.headers;
  const receipt = status < 400 ? billing?.receipt : undefined;
  const head: (string | string[])[] = [];
  for (const k in given) {
    const v = given[k];
    if (v === undefined || RESPONSE_DROP.has(k) || own?.[k] !== undefined) continue;
    if ((receipt !== undefined && k === 'cache-control') || (metered && k === 'content-length')) continue;
    head.push(k, v);
  }
  for (const k in own) head.push(k, own[k]!);
  if (receipt !== undefined) head.push('payment-receipt', receipt, 'cache-control', 'private');
  if (metered) head.push('trailer', CREDIT_HEADER);
  return head;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

const revenueAccount = (service: string): string => `svc:${service}`;

/** The code of a metered request's reservation (a pending transfer until its usage is billed). */

/**
 * Releases the metered reservations a crash left open, before the proxy admits anything: the
 * usage of those requests is unknown, so nothing is charged for them. Returns how many.
 */
export async function recoverInterruptedUsage(ledger: Ledger): Promise<number> {
  const interrupted = ledger.pendingTransfers().filter((t) => t.code === USAGE);
  // Both sides of a pending transfer are resident (the ledger loads them with it at open).
  const voided = interrupted.map((t) => ledger.void(t.id, 'interrupted by a restart').durable);
  await Promise.all(voided);
  return voided.length;
}

/**
 * The L402 reverse proxy. Unpaid requests get a 402 challenge; paid ones are charged from the
 * credential's credit (per request, or per token for OpenAI-compatible endpoints) and forwarded
 * with the service's upstream headers. Responses and streams pass through as they arrive.
 */
export function createProxy(deps: ProxyDeps): Server {
  // undici's client: about half the CPU a request of node:http's (docs/BENCHMARKS.md). No
  // timeouts of its own: a model may think for minutes before its first byte, and long streams
  // must never be cut; a client that leaves aborts its upstream request.
  const upstreamAgent = new UpstreamAgent({ connections: 256, headersTimeout: 0, bodyTimeout: 0 });
  const fixed = matchingOrder(deps.services, (s) => s);
  const services = (): readonly Service[] => deps.catalog?.current() ?? fixed;
  /**
   * What the proxy derives from a service (upstream request options, revenue account), made
   * once per service object: a service changed live is a new object, so it gets its own, and a
   * removed one's are collected with it. Its rate limiters are kept by service name instead, so
   * a change of other terms leaves its buckets as they are (see `limitersOf`).
   */
  const derived = new WeakMap<Service, Derived>();
  const derive = (s: Service): Derived => {
    const known = derived.get(s);
    if (known) return known;
    const { username, password } = s.upstream;
    const d: Derived = {
      ...limitersOf(s),
      headers: Object.entries(s.config.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
      revenueDone: s.config.mode === 'free',
      upstream: {
        origin: s.upstream.origin,
        // Credentials in the upstream's URL: Basic authentication, unless its headers set one.
        ...(username || password
          ? {
              authorization: `Basic ${Buffer.from(
                `${decodeURIComponent(username)}:${decodeURIComponent(password)}`,
              ).toString('base64')}`,
            }
          : {}),
      },
      revenueReady: s.config.mode === 'free' ? Promise.resolve() : revenueAccountOf(s.name),
    };
    d.revenueReady.then(
      () => void (d.revenueDone = true),
      (err: unknown) => deps.log.error({ err, service: s.name }, 'creating the revenue account failed'),
    );
    derived.set(s, d);
    return d;
  };
  /**
   * The rate limiters of each service by name, with the settings they were made for: rebuilt
   * (full buckets) only when its `rateLimit` or `challengeRateLimit` changes. Those of services
   * no longer in the catalog are dropped whenever a changed service is derived, so the map holds
   * at most the catalog's services.
   */
  const limiters = new Map<string, { settings: string; limiter?: RateLimiter; challenges: RateLimiter }>();
  const limitersOf = (s: Service): { limiter?: RateLimiter; challenges: RateLimiter } => {
    const { rateLimit, challengeRateLimit: own } = s.config;
    const settings = JSON.stringify([rateLimit ?? null, own ?? null]);
    const known = limiters.get(s.name);
    if (known?.settings === settings) return known;
    const names = new Set(services().map((x) => x.name));
    for (const name of limiters.keys()) if (!names.has(name)) limiters.delete(name);
    const made = {
      settings,
      ...(rateLimit ? { limiter: new RateLimiter(rateLimit.requests, rateLimit.perSeconds) } : {}),
      challenges: own ? new RateLimiter(own.requests, own.perSeconds) : sharedChallenges,
    };
    limiters.set(s.name, made);
    return made;
  };
  const freebies = new Map<string, number>();
  /** In-flight requests per service: the demand factor of priority prices. */
  const load = new LoadTracker();
  const now = deps.now ?? Date.now;
  const charges = new ChargeBatcher(deps.ledger);
  /** Subscription credentials' periods and counts (a bounded cache; `sub!` records on disk). */
  const subs = new SubscriptionBook(deps.ledger, deps.gate);
  const maxBody = deps.maxBodyBytes ?? 10 * 1024 * 1024;

  /** A service's revenue account, created once (its requests wait for it before charging). */
  const revenueAccountOf = async (name: string): Promise<void> => {
    if (!(await deps.ledger.getAccount(revenueAccount(name)))) {
      await deps.ledger.ensure({ accounts: [revenueAccount(name)] });
      if (!deps.ledger.accountNow(revenueAccount(name)))
        deps.ledger.createAccount({ id: revenueAccount(name), kind: 'service', name: `revenue of ${name}` });
    }
  };

  /** What a credential has left now: its available credit less its charges not yet written. */
  const remaining = async (accountId: string): Promise<bigint> => {
    const a = await deps.ledger.getAccount(accountId);
    return a ? availableOf(a) - charges.unwritten(accountId) : 0n;
  };

  const match = (host: string, path: string): Service | undefined =>
    services().find((s) => path.startsWith(s.pathPrefix) && (!s.host || s.host.test(host)));

  // Challenges cost an LND invoice each: limited per client address, in the proxy-wide bucket
  // or in the service's own.
  const shared = deps.challengeRateLimit ?? DEFAULT_CHALLENGE_RATE_LIMIT;
  const sharedChallenges = new RateLimiter(shared.requests, shared.perSeconds);
  // The revenue accounts of the services known at start, created before the first request.
  for (const s of services()) derive(s);

  const answered = deps.hooks?.answered;
  /**
   * The end of an exchange ('close', not 'finish': a response the client cut off, a stream, was
   * served and charged too): its one listener reports it, ends its load and stops its upstream
   * request if the response did not finish.
   */
  const closed = (res: ServerResponse, x: Exchange): void => {
    if (answered) {
      const seconds = (performance.now() - x.began) / 1000;
      const status = res.statusCode;
      answered(
        x.service === undefined
          ? { status, seconds, paid: false }
          : { service: x.service, status, seconds, paid: x.paid },
      );
    }
    if (x.load !== undefined) load.leave(x.load);
    if (x.abort !== undefined && !res.writableFinished) x.abort.abort();
  };
  const server = createServer((req, res) => {
    const x: Exchange = {
      began: answered ? performance.now() : 0,
      service: undefined,
      paid: false,
      load: undefined,
      abort: undefined,
    };
    // 'close' comes once: `on`, without the wrapper and removal of `once`.
    res.on('close', () => closed(res, x));
    handle(req, res, x).catch((err: unknown) => {
      deps.log.error({ err }, 'proxy request failed');
      if (res.headersSent) return void res.destroy();
      // Client mistakes keep their code; anything else is a gateway fault, described without internals.
      if (err instanceof AppError && err.status < 500)
        return sendJson(res, err.status, { error: { code: err.code, message: err.message } });
      sendJson(res, 502, {
        error: { code: 'GATEWAY_ERROR', message: 'the gateway could not complete this request' },
      });
    });
  });
  // Long streams must never be cut by a server timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  server.on('close', () => {
    charges.close();
    void upstreamAgent.destroy().catch(() => undefined);
  });

  /** The live service of a request's path, or undefined once the refusal (404, 403) is sent. */
  function admitted(
    req: IncomingMessage,
    res: ServerResponse,
    x: Exchange,
    path: string,
  ): Service | undefined {
    const service = match(req.headers.host ?? '', path);
    if (!service)
      return void sendJson(res, 404, {
        error: { code: 'NO_SERVICE', message: 'no service is configured for this path' },
      });
    x.service = service.name;
    x.paid = false;
    if (service.allow && !service.allow.some((r) => r.test(path)))
      return void sendJson(res, 403, {
        error: { code: 'PATH_NOT_ALLOWED', message: 'this path is not offered' },
      });
    return service;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, x: Exchange): Promise<void> {
    const target = canonicalTarget(req.url ?? '/');
    if (!target)
      return sendJson(res, 400, {
        error: { code: 'INVALID_PATH', message: 'the request path is not in canonical form' },
      });
    const path = target.path;
    if (req.method === 'GET' && path === '/.well-known/l402.json')
      return sendJson(res, 200, discovery(services()));
    if (req.method === 'GET' && path === '/l402/quote') return quote(req, res);
    if (req.method === 'POST' && path === '/l402/topup') return topUp(req, res);
    if (req.method === 'POST' && path === '/l402/refund') return refund(req, res);
    let service = admitted(req, res, x, path);
    if (!service) return;
    const hasBody =
      req.headers['content-length'] !== undefined
        ? req.headers['content-length'] !== '0'
        : req.headers['transfer-encoding'] !== undefined;
    const body = hasBody ? await readBody(req, maxBody) : EMPTY;
    if (body === undefined)
      // The rest of the body is never read: the connection cannot carry another request.
      return sendJson(
        res,
        413,
        { error: { code: 'BODY_TOO_LARGE', message: `request bodies are limited to ${maxBody} bytes` } },
        { connection: 'close' },
      );
    // The catalog may have changed while the body arrived (it can take as long as the client
    // likes): the request is served by the service as it is now, or not at all.
    if (hasBody && service !== match(req.headers.host ?? '', path)) service = admitted(req, res, x, path);
    if (!service) return;

    if (service.config.mode === 'free') return forward(service, target, req, res, x, body, undefined);
    // A priority class asked for (docs/L402.md, "Priority pricing"): unknown ones are refused here.
    const asked = askedClass(req.headers[PRIORITY_HEADER]);
    const askedOk = decidePriority(service.priority, asked, undefined);
    if (askedOk.kind === 'invalid')
      return sendJson(res, 400, { error: { code: askedOk.code, message: askedOk.message } });
    if (service.config.mode === 'freebie' && !req.headers.authorization && asked === undefined) {
      const key = `${service.name}|${req.socket.remoteAddress ?? ''}`;
      const used = freebies.get(key) ?? 0;
      if (used < (service.config.freeRequests ?? 0)) {
        if (freebies.size >= 100_000) freebies.clear();
        freebies.set(key, used + 1);
        return forward(service, target, req, res, x, body, undefined);
      }
    }

    const metered = service.models !== undefined && METERED_PATHS.has(path) && req.method === 'POST';
    // A per-token service bills the OpenAI endpoints; other writes have no price, so they are not sold.
    if (!metered && service.pricePerRequest === undefined && req.method !== 'GET' && req.method !== 'HEAD') {
      return sendJson(res, 403, {
        error: { code: 'PATH_NOT_BILLABLE', message: 'this service sells its metered endpoints only' },
      });
    }
    const mppCredential = service.mpp ? parseCredential(req.headers.authorization) : undefined;
    let receipt: string | undefined;
    let mppIntent: 'charge' | 'session' | undefined;
    let auth;
    if (mppCredential !== undefined && deps.mpp && service.mpp) {
      const m =
        mppCredential === 'malformed'
          ? ({
              ok: false,
              problem: 'malformed-credential',
              status: 402,
              message: 'unreadable credential',
            } as const)
          : await deps.mpp.authorize(mppCredential, service.mpp);
      if (m.ok === 'close')
        return closeSession(res, m.accountId, m.sessionId, m.returnInvoice ?? m.session.returnInvoice);
      if (!m.ok) return challenge(service, req, res, m.message, 'PAYMENT_REQUIRED', m.problem);
      receipt = m.receipt;
      mppIntent = m.intent;
      auth = m;
    } else if (service.schemes.l402) {
      const capability = service.config.capabilities ? capabilityOf(path) : undefined;
      // A credential already verified, its credit booked: answered without a wait.
      const now = deps.gate.authorizeNow(req.headers.authorization, service.name, capability);
      auth =
        now === 'booking'
          ? await deps.gate.authorize(req.headers.authorization, service.name, capability)
          : now;
      if (!auth.ok)
        return challenge(
          service,
          req,
          res,
          auth.message,
          auth.failure === 'REVOKED' ? 'CREDENTIAL_REVOKED' : undefined,
          undefined,
          asked,
        );
    } else return challenge(service, req, res, 'this service is paid with the Payment scheme');
    // A credential serves the priority class it was bought for (and lower ones) at its locked price.
    const prio = decidePriority(service.priority, asked, 'priority' in auth ? auth.priority : undefined);
    if (prio.kind === 'challenge')
      return challenge(service, req, res, prio.message, 'PRIORITY_NOT_COVERED', undefined, prio.class);
    const locked = prio.kind === 'serve' ? prio.locked : undefined;
    const derived = derive(service);
    const wait = derived.limiter?.take(auth.tokenId) ?? 0;
    if (wait > 0)
      return sendJson(
        res,
        429,
        { error: { code: 'RATE_LIMITED', message: 'too many requests for this credential' } },
        { 'retry-after': String(Math.ceil(wait / 1000)) },
      );

    let parsed: Record<string, unknown> | undefined;
    if (metered) {
      try {
        const v: unknown = body.length ? JSON.parse(body.toString('utf8')) : {};
        if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
        parsed = v as Record<string, unknown>;
        promptText(parsed); // refuses shapes it cannot read before anything is reserved
      } catch {
        return sendJson(res, 400, {
          error: { code: 'INVALID_JSON', message: 'the request body is not a JSON object of this API' },
        });
      }
    }
    // Budget-aware routing: the payer's tier may serve another model, or refuse before any charge.
    const route =
      parsed && service.routing && deps.router
        ? await deps.router.route(service.routing, auth, parsed)
        : undefined;
    if (route?.kind === 'refused') return sendJson(res, 403, refusalBody(route));
    if (!derived.revenueDone) await derived.revenueReady;
    // A subscription: started, renewed if paid, resident for the count below.
    const sub = service.subscription ? subscriberOf(service, auth) : undefined;
    if (service.subscription && !sub)
      return challenge(service, req, res, 'this credential is not a subscription of this service');
    const subRecord = sub ? await subs.prepare(sub, now()) : undefined;
    // Everything from here to the charge is one synchronous step on resident accounts.
    const revenue = revenueAccount(service.name);
    // Resident (never on a shared store, where the credential's lease is taken): no wait.
    if (!deps.ledger.resident([auth.accountId, revenue]))
      await deps.ledger.ensure({ spend: [auth.accountId], accounts: [revenue] });
    const account = deps.ledger.accountNow(auth.accountId);
    const available = account ? availableOf(account) - charges.unwritten(auth.accountId) : 0n;
    const pricing = parsed
      ? pricingFor(service, typeof parsed['model'] === 'string' ? parsed['model'] : undefined)
      : undefined;
    if (metered && !pricing)
      return sendJson(res, 400, {
        error: { code: 'UNKNOWN_MODEL', message: 'this service has no price for that model' },
      });
    const bound = pricing ? worstCase(pricing, parsed!, path, body.length) : undefined;
    // A fixed-price MPP charge credential is drained by its one request: its account holds what
    // its challenge quoted (the price rounded up to whole sats, at the price of that moment), and
    // the empty balance, taken in this same step, is its durable single use.
    const drain = !pricing && mppIntent === 'charge';
    // A subscription's request is counted here: free within its quota, else its overage.
    const use = sub && subRecord ? takeUse(subRecord, sub.terms, now(), available) : undefined;
    if (use && (use.kind === 'renewal-required' || use.kind === 'credit-required'))
      return subscriptionRefusal(service, req, res, sub!, subRecord!, use.kind);
    let reserveAmount: bigint;
    if (use) reserveAmount = use.kind === 'overage' ? use.priceMsat : 0n;
    else if (pricing) reserveAmount = bound ?? available;
    else if (drain) reserveAmount = available;
    else reserveAmount = locked?.priceMsat ?? service.pricePerRequest ?? 0n;
    if ((pricing || drain) && reserveAmount <= 0n) reserveAmount = 1n;
    if (!use && (available <= 0n || available < reserveAmount))
      return challenge(
        service,
        req,
        res,
        mppIntent === undefined
          ? 'the credit of this credential is used up; pay a new challenge or top it up'
          : mppIntent === 'charge'
            ? 'this charge credential is used (a charge buys one request); pay a new challenge'
            : 'the deposit of this session is used up; close it and open a new one',
        'PAYMENT_REQUIRED',
        mppIntent === undefined
          ? undefined
          : mppIntent === 'charge'
            ? 'verification-failed'
            : 'lightning/insufficient-balance',
        asked ?? locked?.class,
      );

    x.paid = true;
    const billing: Billing = {
      service: service.name,
      reserved: msat(reserveAmount),
      path,
      stream: parsed?.['stream'] === true,
      unbounded: pricing !== undefined && bound === undefined,
      revenue,
      account: auth.accountId,
      settled: false,
      headers: {},
    };
    if (receipt !== undefined) billing.receipt = receipt;
    if (parsed) billing.parsed = parsed;
    if (pricing) billing.pricing = pricing;
    if (pricing) {
      // Metered: reserve the worst case now, post what was used at the end.
      const r = deps.ledger.transfer({
        debitAccountId: auth.accountId,
        creditAccountId: billing.revenue,
        amount: billing.reserved,
        code: USAGE,
        pending: true,
        memo: usageMemo(path, deps.instanceId),
      });
      billing.reservation = r.value.id;
      billing.charged = r.durable;
    } else if (reserveAmount > 0n) {
      // A fixed price is charged up front, aggregated with the credential's other requests of
      // this moment into one ledger write that becomes durable while the upstream works.
      const state = charges.charge(auth.accountId, billing.revenue, reserveAmount);
      billing.charged = state.durable;
      // A subscription's count is written too (below): then only the promise tells.
      if (!sub) billing.chargeState = state;
    }
    if (sub && subRecord) {
      // The count is durable before the response leaves, like a charge.
      const counted = subs.write(sub.tokenId, subRecord);
      const period = subRecord.periodStart;
      billing.uncount = () => subs.uncount(sub.tokenId, period);
      const charged = billing.charged;
      billing.charged = charged ? Promise.all([charged, counted]).then(() => undefined) : counted;
      billing.headers[SUBSCRIPTION_HEADER] = useHeader(subRecord, sub.terms.includedRequests);
    }
    billing.headers[CREDIT_HEADER] = String(available - reserveAmount);
    if (route) Object.assign(billing.headers, routeHeaders(route));
    if (locked?.class !== undefined) {
      // The class served, told to the client and (instead of what the client asked) upstream.
      billing.headers[PRIORITY_HEADER] = locked.class;
      req.headers[PRIORITY_HEADER] = locked.class;
    }
    let outBody = body;
    if (parsed && billing.stream && path !== '/v1/embeddings') {
      // Ask for the usage chunk, so the bill is what the upstream counted.
      parsed['stream_options'] = {
        ...((parsed['stream_options'] as object | undefined) ?? {}),
        include_usage: true,
      };
      outBody = Buffer.from(JSON.stringify(parsed));
    } else if (route?.kind === 'served' && route.served !== route.requested)
      outBody = Buffer.from(JSON.stringify(parsed));
    return forward(service, target, req, res, x, outBody, billing);
  }

  interface Billing {
    service: string;
    /** The pending ledger transfer of a metered request. */
    reservation?: string;
    reserved: Msat;
    pricing?: ModelPricing;
    path: string;
    parsed?: Record<string, unknown>;
    stream: boolean;
    unbounded: boolean;
    /** The charge (fixed price) or reservation (metered) becoming durable. */
    charged?: Promise<void>;
    /** A fixed-price charge's batch, whose `done` tells without a wait that `charged` is over. */
    chargeState?: ChargeState;
    /**
     * The proxy's own headers of the response (credit, subscription, routing, priority), written
     * with the upstream's in one `writeHead`.
     */
    headers: Record<string, string>;
    revenue: string;
    account: string;
    settled: boolean;
    /** MPP: the `Payment-Receipt` of a successful (2xx/3xx) answer. */
    receipt?: string;
    /** A subscription's request: takes its count back when nothing was served. */
    uncount?: () => Promise<void>;
  }

  /**
   * A 402 for a subscription that needs paying (docs/L402.md, "Subscriptions"): an invoice that
   * renews it or adds overage credit to the same credential (no new macaroon: the credential
   * stays), rate-limited like challenges.
   */
  async function subscriptionRefusal(
    service: Service,
    req: IncomingMessage,
    res: ServerResponse,
    sub: Subscriber,
    rec: SubscriptionRecord,
    kind: SubscriptionRefusal,
  ): Promise<void> {
    if (challengeRefused(service, req, res)) return;
    const renewal = kind === 'renewal-required';
    const amount = renewal ? sub.terms.priceMsat : service.credit;
    const inv = await subs.invoice(
      sub,
      renewal ? 'renewal' : 'credit',
      { name: service.name, creditMsat: service.credit, lifetimeSeconds: service.config.lifetimeSeconds },
      amount,
      now(),
    );
    if (inv.fresh) deps.hooks?.challenged?.(service.name);
    sendJson(
      res,
      402,
      subscriptionRefusalBody(kind, rec, sub.terms, { request: inv.request, paymentHash: inv.hash }, amount),
      {
        'cache-control': 'no-store',
        [SUBSCRIPTION_HEADER]: useHeader(rec, sub.terms.includedRequests),
      },
    );
  }

  /** Takes a challenge from the client address's bucket; true once the 429 is sent. */
  function challengeRefused(service: Service, req: IncomingMessage, res: ServerResponse): boolean {
    const wait = derive(service).challenges.take(req.socket.remoteAddress ?? '');
    if (wait <= 0) return false;
    sendJson(
      res,
      429,
      { error: { code: 'RATE_LIMITED', message: 'too many challenges from this address' } },
      { 'retry-after': String(Math.ceil(wait / 1000)) },
    );
    return true;
  }

  async function challenge(
    service: Service,
    req: IncomingMessage,
    res: ServerResponse,
    message: string,
    /** The body's error code: why the presented credential, if any, was refused. */
    code = 'PAYMENT_REQUIRED',
    /** The RFC 9457 problem type of an MPP refusal. */
    problemType: Parameters<typeof problem>[0] = 'payment-required',
    /** A credential for this priority class: L402 only, its price locked in the macaroon. */
    priorityClass?: string,
  ): Promise<void> {
    // A price of this moment (a priority class, dynamic rules), locked in the credential.
    const offer = offerFor(service, priorityClass, load.of(service.name), now());
    if (offer === 'unknown-class')
      return sendJson(res, 400, {
        error: { code: 'UNKNOWN_PRIORITY_CLASS', message: 'this service does not sell that priority class' },
      });
    if (challengeRefused(service, req, res)) return;
    // Both offers mint invoices concurrently and are awaited together: a failure of either
    // rejects here (the caller's usual 502/503), never a promise left without a handler.
    const [c, mppOffers] = await Promise.all([
      service.schemes.l402
        ? deps.gate.challenge({
            name: service.name,
            creditMsat: offer?.creditMsat ?? service.credit,
            lifetimeSeconds: service.config.lifetimeSeconds,
            ...(service.config.capabilities ? { capabilities: service.config.capabilities } : {}),
            ...(service.config.l402TokenForm ? { tokenForm: true } : {}),
            ...(offer ? { caveats: offer.caveats } : {}),
          })
        : undefined,
      service.mpp && deps.mpp && !offer ? deps.mpp.challenges(service.mpp) : undefined,
    ]);
    deps.hooks?.challenged?.(service.name);
    if (mppOffers) {
      // L402 first (today's clients read the first challenge), then Payment charge and session.
      return sendProblem(
        res,
        402,
        problem(problemType, 402, message, {
          code,
          ...(c ? { invoice: c.invoice, creditMsat: service.credit.toString() } : {}),
        }),
        { 'www-authenticate': [...(c?.headers ?? []), ...mppOffers], 'cache-control': 'no-store' },
      );
    }
    if (!c) throw new Error(`service ${service.name} offers no scheme`);
    sendJson(
      res,
      402,
      {
        error: { code, message },
        invoice: c.invoice,
        creditMsat: (offer?.creditMsat ?? service.credit).toString(),
        ...offer?.body,
      },
      { 'www-authenticate': c.headers, 'cache-control': 'no-store' },
    );
  }

  /**
   * Settles a request's bill exactly once: a metered reservation is posted with what was used
   * (never more than reserved) or voided; a fixed-price charge stands, or is refunded when
   * nothing was served. Durable before it returns; never throws into the request.
   */
  async function settle(b: Billing | undefined, used: bigint | undefined): Promise<void> {
    if (!b || b.settled) return;
    b.settled = true;
    try {
      await b.charged;
      if (!b.pricing) {
        if (used === 0n && b.reserved > 0n) await charges.refund(b.account, b.revenue, b.reserved);
        if (used === 0n && b.uncount) await b.uncount();
        deps.hooks?.charged?.(b.service, used === 0n ? msat(0n) : b.reserved);
        return;
      }
      if (!b.reservation) return;
      const charge = used === undefined ? b.reserved : used > b.reserved ? b.reserved : used;
      // A shared store: the credential's lease may have gone to another instance while the
      // upstream worked; only its holder may post or void the reservation (read afresh with it).
      if (deps.ledger.shared)
        await deps.ledger.ensure({ spend: [b.account], accounts: [b.revenue], transfers: [b.reservation] });
      await (
        charge > 0n
          ? deps.ledger.post(b.reservation, msat(charge))
          : deps.ledger.void(b.reservation, 'nothing used')
      ).durable;
      deps.hooks?.charged?.(b.service, msat(charge));
    } catch (err) {
      deps.log.error({ err, account: b.account }, 'settling an L402 request failed');
    }
  }

  function forward(
    service: Service,
    target: CanonicalTarget,
    req: IncomingMessage,
    res: ServerResponse,
    x: Exchange,
    body: Buffer,
    billing: Billing | undefined,
  ): Promise<void> | void {
    // In flight until its response is over (a stream included) or its client is gone.
    if (!res.closed) {
      load.enter(service.name);
      x.load = service.name;
    }
    const d = derive(service);
    const headers: Record<string, string | string[]> = {};
    const given = req.headers;
    for (const k in given) {
      const v = given[k];
      if (v !== undefined && !REQUEST_DROP.has(k)) headers[k] = v;
    }
    for (const [k, v] of d.headers) headers[k] = v;
    const dest = d.upstream;
    if (dest.authorization !== undefined && headers['authorization'] === undefined)
      headers['authorization'] = dest.authorization;
    const options: Dispatcher.DispatchOptions = {
      origin: dest.origin,
      path: target.pathAndSearch,
      method: req.method ?? 'GET',
      headers,
      body: body.length ? body : null,
    };
    const pricing = billing?.pricing;
    if (billing && pricing) return forwardMetered(service, res, x, options, billing, pricing);
    // Per-request billing (or free): the bytes pass through untouched, straight into the response.
    const through = new PassThrough(res, {
      head: (status, upHeaders) => passHead(res, status, upHeaders, billing),
      failed: (err) => void upstreamFailed(service, res, billing, err),
      broken: (err) => deps.log.warn({ err, service: service.name }, 'relaying a response failed'),
    });
    x.abort = through;
    try {
      upstreamAgent.dispatch(options, through);
    } catch (err) {
      return upstreamFailed(service, res, billing, err as Error);
    }
    // The client went away before its request was forwarded: nothing will be delivered.
    if (res.closed) through.abort();
  }

  /**
   * No response came from the upstream (refused, failed, or stopped because the client left):
   * the charge is taken back, and the client (if still there) told so.
   */
  async function upstreamFailed(
    service: Service,
    res: ServerResponse,
    billing: Billing | undefined,
    err: Error,
  ): Promise<void> {
    deps.log.warn({ err: err.message, service: service.name }, 'upstream request failed');
    try {
      await settle(billing, 0n);
      // The charge was taken back: the figure is what is left after that.
      const own = billing
        ? { ...billing.headers, [CREDIT_HEADER]: String(await remaining(billing.account)) }
        : {};
      if (!res.headersSent)
        return sendJson(
          res,
          502,
          { error: { code: 'UPSTREAM_UNAVAILABLE', message: 'the upstream service did not answer' } },
          own,
        );
    } catch (e) {
      deps.log.error({ err: e, service: service.name }, 'answering a failed upstream request failed');
    }
    res.destroy();
  }

  /** A metered request upstream: the body is read as it passes (usage, stream metering). */
  function forwardMetered(
    service: Service,
    res: ServerResponse,
    x: Exchange,
    options: Dispatcher.DispatchOptions,
    billing: Billing,
    pricing: ModelPricing,
  ): Promise<void> {
    return new Promise((resolve) => {
      const fail = (err: Error): void => void upstreamFailed(service, res, billing, err).then(resolve);
      // Stopped by the exchange's close listener if the client goes before the response is over.
      const abort = new AbortEmitter();
      x.abort = abort;
      let sent: Promise<Dispatcher.ResponseData>;
      try {
        sent = upstreamAgent.request({ ...options, signal: abort });
      } catch (err) {
        return fail(err as Error);
      }
      // The client went away before its request was forwarded: nothing will be delivered.
      if (res.closed) abort.abort();
      sent.then((up) => {
        relay(up, res, billing, pricing)
          .catch((err: unknown) =>
            deps.log.warn({ err, service: service.name }, 'relaying a response failed'),
          )
          .finally(resolve);
      }, fail);
    });
  }

  /**
   * The head of a response passed through (per-request billing, or free): the upstream's status
   * and headers, and the proxy's own. Nothing of it leaves before its charge is on disk: a crash
   * can never hand out a paid response that the ledger does not know about. The write started
   * before the request went upstream, so this may be over already and the head is written at
   * once; else (or to take back the charge of an error status first) a promise, which the body
   * waits for.
   */
  function passHead(
    res: ServerResponse,
    status: number,
    given: IncomingHttpHeaders,
    billing: Billing | undefined,
  ): Promise<void> | undefined {
    const ok = status < 400;
    const durable = billing === undefined || billing.chargeState?.done === true;
    if (ok && durable) {
      writePassedHead(res, status, given, billing);
      return undefined;
    }
    return (async () => {
      if (billing?.charged) await billing.charged;
      // An error status served nothing: its charge is taken back before it leaves.
      if (!ok && billing) {
        await settle(billing, 0n);
        billing.headers[CREDIT_HEADER] = String(await remaining(billing.account));
      }
      writePassedHead(res, status, given, billing);
    })();
  }

  function writePassedHead(
    res: ServerResponse,
    status: number,
    given: IncomingHttpHeaders,
    billing: Billing | undefined,
  ): void {
    res.writeHead(status, responseHead(status, given, billing, false));
    if (status < 400 && billing && !billing.settled) {
      // Settled here: its charge is durable and stands.
      billing.settled = true;
      deps.hooks?.charged?.(billing.service, billing.reserved);
    }
  }

  /** Writes a chunk; resolves false if the client went away instead of draining. */
  function write(res: ServerResponse, chunk: string | Buffer): Promise<boolean> {
    if (res.destroyed) return Promise.resolve(false);
    if (res.write(chunk)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => () => {
        res.off('drain', onDrain);
        res.off('close', onClose);
        resolve(ok);
      };
      const onDrain = done(true);
      const onClose = done(false);
      res.once('drain', onDrain);
      res.once('close', onClose);
    });
  }

  /** A metered request's response: forwarded as it comes, its usage read, billed at the end. */
  async function relay(
    response: Dispatcher.ResponseData,
    res: ServerResponse,
    billing: Billing,
    pricing: ModelPricing,
  ): Promise<void> {
    const status = response.statusCode;
    const up: Readable = response.body;
    const ok = status < 400;
    let used: bigint | undefined = ok ? undefined : 0n;
    try {
      // Nothing of the response leaves before its reservation is on disk: a crash can never hand
      // out a paid response that the ledger does not know about. The write started before the
      // request went upstream, so this wait is normally already over.
      if (billing.charged) await billing.charged;
      res.writeHead(status, responseHead(status, response.headers, billing, true));
      const promptEstimate = estimateTokens(promptText(billing.parsed ?? {}));
      if (!billing.stream) {
        // Forward as it comes; keep a bounded copy to read the usage at the end.
        const copy: Buffer[] = [];
        let size = 0;
        for await (const chunk of up) {
          const b = chunk as Buffer;
          if (size < 4 * 1024 * 1024) copy.push(b);
          size += b.length;
          if (!(await write(res, b))) break;
        }
        if (ok) {
          const text = Buffer.concat(copy).toString('utf8');
          let usage: Usage | undefined;
          try {
            usage = (JSON.parse(text) as { usage?: Usage }).usage;
          } catch {
            usage = undefined;
          }
          used = usage
            ? costOf(pricing, BigInt(usage.prompt_tokens ?? 0), BigInt(usage.completion_tokens ?? 0))
            : costOf(pricing, promptEstimate, estimateTokens(text));
        }
        await settle(billing, used);
        res.addTrailers({ [CREDIT_HEADER]: String(await remaining(billing.account)) });
        res.end();
        return;
      }
      // Streams: forward event by event; cut cleanly when the credit reserved for this request is used up.
      const meter = new StreamMeter();
      const model =
        typeof billing.parsed?.['model'] === 'string' ? (billing.parsed['model'] as string) : undefined;
      const spent = (): bigint =>
        meter.usage
          ? costOf(
              pricing,
              BigInt(meter.usage.prompt_tokens ?? 0),
              BigInt(meter.usage.completion_tokens ?? 0),
            )
          : costOf(pricing, promptEstimate, meter.estimatedOutputTokens());
      let cut = false;
      let gone = false;
      // The upstream's `data: [DONE]` (and anything after it) waits for the final figure.
      let tail = '';
      const contentType = response.headers['content-type'];
      const sse = ok && typeof contentType === 'string' && /^text\/event-stream/i.test(contentType);
      up.setEncoding('utf8');
      try {
        outer: for await (const chunk of up) {
          for (const event of meter.push(chunk as string)) {
            if (sse && (tail || isDoneEvent(event))) {
              tail += event;
              continue;
            }
            if (billing.unbounded && !meter.usage && spent() > billing.reserved) {
              cut = true;
              break outer;
            }
            if (!(await write(res, event))) {
              gone = true;
              break outer;
            }
          }
        }
      } catch {
        // The upstream broke mid-stream: bill what was delivered, close the stream properly.
        cut = true;
      }
      if (ok) used = spent();
      if (cut || gone) up.destroy();
      await settle(billing, used);
      if (gone) return;
      const figure = String(await remaining(billing.account));
      res.addTrailers({ [CREDIT_HEADER]: figure });
      const comment = sse ? sseComment(CREDIT_COMMENT, figure) : '';
      // A stream cut before its end gets a clean close; one that already sent [DONE] keeps it.
      res.end(
        cut && !tail
          ? closingEvents(billing.path, model, comment)
          : comment + tail + (cut ? '' : meter.rest()),
      );
    } finally {
      // Whatever happened (client gone, upstream error), the bill is settled exactly once.
      await settle(billing, used);
    }
  }

  /** POST /l402/topup?service=NAME&amountMsat=N with the credential: an invoice that adds credit to it. */
  async function topUp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const s = services().find((x) => x.name === q.get('service'));
    if (!s || s.config.mode === 'free')
      return sendJson(res, 404, { error: { code: 'NO_SERVICE', message: 'unknown or free service' } });
    const raw = q.get('amountMsat') ?? s.credit.toString();
    if (!/^[1-9][0-9]{0,15}$/.test(raw))
      return sendJson(res, 400, {
        error: { code: 'INVALID_AMOUNT', message: 'amountMsat must be a positive integer' },
      });
    const auth = await deps.gate.authorize(req.headers.authorization, s.name);
    if (!auth.ok)
      return sendJson(res, 401, {
        error: {
          code: auth.failure === 'REVOKED' ? 'CREDENTIAL_REVOKED' : 'INVALID_CREDENTIAL',
          message: auth.message,
        },
      });
    const inv = await deps.gate.topUp(
      auth.tokenId,
      { name: s.name, creditMsat: s.credit, lifetimeSeconds: s.config.lifetimeSeconds },
      msat(raw),
    );
    sendJson(res, 200, {
      invoice: inv.request,
      paymentHash: inv.paymentHash,
      amountMsat: inv.amountMsat.toString(),
    });
  }

  /** Makes this proxy's charges not yet written durable (before a close reads the balance). */
  const flushCharges = async (): Promise<void> => {
    await deps.ledger.flush();
    await deps.ledger.flush();
  };

  /**
   * POST /l402/refund?service=NAME with the credential: closes it and refunds its unused credit,
   * `{"invoice": "<bolt11>", "maxFeeMsat"?: "<msat>"}` or `{"accountId": "<gateway account>"}`.
   */
  async function refund(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const s = services().find((x) => x.name === q.get('service'));
    if (!s || s.config.mode === 'free' || !deps.refunds)
      return sendJson(res, 404, { error: { code: 'NO_SERVICE', message: 'unknown or free service' } });
    const raw = await readBody(req, 16 * 1024);
    const destination = raw ? refundDestination(raw) : undefined;
    if (!destination)
      return sendJson(res, 400, {
        error: {
          code: 'INVALID_REFUND_REQUEST',
          message: 'send {"invoice": "<bolt11>", "maxFeeMsat"?: "<msat>"} or {"accountId": "<account>"}',
        },
      });
    const r = await deps.refunds.closeL402(req.headers.authorization, s.name, destination, flushCharges);
    sendJson(res, 200, refundView(r));
  }

  /** An MPP session close: refused from now on, then its unused deposit goes to its return invoice. */
  async function closeSession(
    res: ServerResponse,
    accountId: string,
    sessionId: string,
    returnInvoice: string | undefined,
  ): Promise<void> {
    await deps.mpp!.markClosed(sessionId);
    if (!deps.refunds) return sendJson(res, 200, closeAnswer(undefined));
    // Without a usable return invoice no close record is written: the deposit stays in the
    // session's account and a later close naming a new returnInvoice refunds it.
    const unrefunded = async (code: string, message: string): Promise<void> => {
      await flushCharges();
      sendJson(res, 200, closeUnrefunded(await remaining(accountId), code, message));
    };
    if (!returnInvoice && !(await deps.refunds.refunds.closed(accountId)))
      return unrefunded(
        'RETURN_INVOICE_REQUIRED',
        'this session has no return invoice: close it again with {"returnInvoice": "<bolt11 without amount>"}',
      );
    try {
      const result = await deps.refunds.refunds.close(
        accountId,
        {
          kind: 'invoice',
          invoice: returnInvoice ?? '',
          maxFeeMsat: deps.refunds.sessionRefundMaxFeeMsat,
        },
        flushCharges,
      );
      sendJson(res, 200, closeAnswer(result));
    } catch (err) {
      if (!(err instanceof RefundError) || err.code !== 'REFUND_DESTINATION_INVALID') throw err;
      return unrefunded(
        'RETURN_INVOICE_INVALID',
        `${err.message}: close it again with a new {"returnInvoice": "<bolt11 without amount>"}`,
      );
    }
  }

  function quote(req: IncomingMessage, res: ServerResponse): void {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const s = services().find((x) => x.name === q.get('service'));
    if (!s) return sendJson(res, 404, { error: { code: 'NO_SERVICE', message: 'unknown service' } });
    const pricing = pricingFor(s, q.get('model') ?? undefined);
    const maxTokens = Number(q.get('max_tokens') ?? '0');
    const promptTokens = Number(q.get('prompt_tokens') ?? '0');
    if (
      !Number.isInteger(maxTokens) ||
      maxTokens < 0 ||
      !Number.isInteger(promptTokens) ||
      promptTokens < 0
    ) {
      return sendJson(res, 400, {
        error: {
          code: 'INVALID_QUERY',
          message: 'max_tokens and prompt_tokens must be non-negative integers',
        },
      });
    }
    // A priority class: its price now (docs/L402.md, "Priority pricing").
    const asked = q.get('priority');
    const offer =
      asked !== null && s.priority
        ? quotePriority(
            s.priority,
            asked.trim().toLowerCase(),
            load.of(s.name),
            ruleFactors(s.rules, now(), load.of(s.name)),
          )
        : undefined;
    // Dynamic rules: the per-request price a challenge would lock now.
    const dynamic = dynamicPrice(s, load.of(s.name), now());
    if (asked !== null && !offer)
      return sendJson(res, 400, {
        error: s.priority
          ? { code: 'UNKNOWN_PRIORITY_CLASS', message: 'this service does not sell that priority class' }
          : { code: 'PRIORITY_NOT_OFFERED', message: 'this service has no priority classes' },
      });
    sendJson(res, 200, {
      service: s.name,
      ...(offer ? { priority: quoteView(offer) } : {}),
      creditMsat: s.credit.toString(),
      ...(s.subscription ? { subscription: subscriptionView(s.subscription) } : {}),
      ...(s.pricePerRequest !== undefined && !s.subscription
        ? { perRequestMsat: (dynamic?.priceMsat ?? s.pricePerRequest).toString() }
        : {}),
      ...(dynamic ? { price: dynamicView(dynamic) } : {}),
      ...(pricing
        ? { estimateMsat: costOf(pricing, BigInt(promptTokens), BigInt(maxTokens)).toString() }
        : {}),
    });
  }

  return server;
}

function refundDestination(raw: Buffer): RefundDestination | undefined {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (typeof o['invoice'] === 'string' && keys.every((k) => k === 'invoice' || k === 'maxFeeMsat')) {
    const fee = o['maxFeeMsat'] ?? '0';
    if (typeof fee !== 'string' || !/^(0|[1-9][0-9]{0,12})$/.test(fee)) return undefined;
    return { kind: 'invoice', invoice: o['invoice'].trim(), maxFeeMsat: msat(fee) };
  }
  // A client account (the ids clients create: no `:`, so never a system or credential account).
  if (
    typeof o['accountId'] === 'string' &&
    keys.length === 1 &&
    /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/.test(o['accountId'])
  )
    return { kind: 'account', accountId: o['accountId'] };
  return undefined;
}

function refundView(r: import('../l402/refund.js').RefundResult): Record<string, unknown> {
  return {
    status: r.status,
    refundMsat: r.refundMsat.toString(),
    destination: r.destination,
    closedAt: r.closedAt,
    ...(r.paymentId ? { paymentId: r.paymentId } : {}),
    ...(r.transferId ? { transferId: r.transferId } : {}),
    ...(r.unusedFeeReserveMsat !== undefined
      ? { unusedFeeReserveMsat: r.unusedFeeReserveMsat.toString() }
      : {}),
    ...(r.feeMsat !== undefined ? { feeMsat: r.feeMsat.toString() } : {}),
  };
}

interface Derived {
  limiter?: RateLimiter;
  challenges: RateLimiter;
  /** The service's own upstream headers, names lower-cased. */
  headers: readonly (readonly [string, string])[];
  /** The revenue account exists (`revenueReady` resolved): its requests need not wait. */
  revenueDone: boolean;
  upstream: {
    /** Where its requests go (scheme, host and port). */
    origin: string;
    /** Basic authentication from the credentials in the upstream's URL. */
    authorization?: string;
  };
  revenueReady: Promise<void>;
}

/** One request and its response, from arrival to the response's 'close'. */
/**
 * A signal undici takes (an EventEmitter costs less than an AbortController) that the exchange
 * holds itself: a closure over it would keep its request's context alive as long as the exchange.
 */
class AbortEmitter extends EventEmitter {
  abort(): void {
    this.emit('abort');
  }
}

interface Exchange {
  /** When it arrived (performance.now(); 0 when nothing reports durations). */
  began: number;
  /** The service it matched. */
  service: string | undefined;
  /** Charged to a credential. */
  paid: boolean;
  /** The service whose load it counts in while it is forwarded. */
  load: string | undefined;
  /** Aborts its upstream request (if the response did not finish when the exchange closed). */
  abort: { abort(): void } | undefined;
}

function discovery(services: readonly Service[]): unknown {
  return {
    version: 1,
    protocol: 'L402',
    services: services.map((s) => ({
      name: s.name,
      description: s.config.description ?? '',
      schemes: [...(s.schemes.l402 ? ['L402'] : []), ...(s.mpp ? ['Payment'] : [])],
      ...(s.mpp ? { mpp: { method: 'lightning', intents: s.mpp.intents } } : {}),
      pathPrefix: s.pathPrefix,
      mode: s.config.mode,
      ...(s.config.mode === 'freebie' ? { freeRequests: s.config.freeRequests } : {}),
      creditMsat: s.credit.toString(),
      ...(s.pricePerRequest !== undefined && !s.subscription
        ? { pricePerRequestMsat: s.pricePerRequest.toString() }
        : {}),
      ...(s.subscription ? { subscription: subscriptionView(s.subscription) } : {}),
      ...(s.models
        ? {
            models: Object.fromEntries(
              [...s.models].map(([k, v]) => [
                k,
                {
                  inputPerTokenMsat: v.inputPerTokenMsat.toString(),
                  outputPerTokenMsat: v.outputPerTokenMsat.toString(),
                },
              ]),
            ),
          }
        : {}),
      capabilities: s.config.capabilities ?? [],
      lifetimeSeconds: s.config.lifetimeSeconds,
      ...(s.routing ? { routing: routingView(s.routing) } : {}),
      ...(s.priority ? { priority: priorityDiscovery(s.priority) } : {}),
      ...(s.rules ? { priceRules: rulesDiscovery(s.rules) } : {}),
      pricingModels: [
        ...(s.subscription ? ['subscription'] : s.pricePerRequest !== undefined ? ['per-request'] : []),
        ...(s.models ? ['per-token'] : []),
        ...(s.priority ? ['priority'] : []),
        ...(s.rules ? ['dynamic'] : []),
      ],
    })),
  };
}

const EMPTY = Buffer.alloc(0);

/** The capability an OpenAI-compatible path needs (when the service names capabilities). */
function capabilityOf(path: string): string | undefined {
  if (path === '/v1/chat/completions') return 'chat';
  if (path === '/v1/completions') return 'completions';
  if (path === '/v1/embeddings') return 'embeddings';
  return undefined;
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The subscriber of a credential of a subscription service; undefined when it holds no subscription. */
function subscriberOf(
  service: Service,
  auth: { tokenId: string; accountId: string } & { subscription?: Subscriber['terms'] },
): Subscriber | undefined {
  if (!auth.subscription) return undefined;
  return {
    tokenId: auth.tokenId,
    accountId: auth.accountId,
    terms: auth.subscription,
    service: service.name,
    revenue: revenueAccount(service.name),
  };
}
