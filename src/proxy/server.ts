import {
  createServer,
  request as httpRequest,
  Agent,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import { msat, type Msat } from '../domain/msat.js';
import { LedgerError } from '../ledger/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf } from '../ledger/types.js';
import type { L402Gate } from '../l402/gate.js';
import type { Service } from './config.js';
import {
  closingEvents,
  costOf,
  estimateTokens,
  METERED_PATHS,
  pricingFor,
  promptText,
  StreamMeter,
  worstCase,
  type Usage,
} from './metering.js';
import { ChargeBatcher } from './charge-batcher.js';
import { RateLimiter } from './rate-limit.js';

export interface ProxyDeps {
  services: Service[];
  gate: L402Gate;
  ledger: Ledger;
  log: { warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  /** Largest request body forwarded (bytes). */
  maxBodyBytes?: number;
}

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];
/** Not forwarded upstream: the client's credential, and what we set ourselves. */
const REQUEST_DROP = new Set([...HOP_BY_HOP, 'host', 'authorization', 'content-length']);
/** Not passed back: hop-by-hop only (the upstream's content-length stays when the body does). */
const RESPONSE_DROP = new Set(HOP_BY_HOP);
const CREDIT_HEADER = 'x-l402-credit-remaining-msat';

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

/**
 * The L402 reverse proxy. Unpaid requests get a 402 challenge; paid ones are charged from the
 * credential's credit (per request, or per token for OpenAI-compatible endpoints) and forwarded
 * with the service's upstream headers. Responses and streams pass through as they arrive.
 */
export function createProxy(deps: ProxyDeps): Server {
  const agents = {
    http: new Agent({ keepAlive: true, maxSockets: 256 }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
  };
  const limiters = new Map(
    deps.services
      .filter((s) => s.config.rateLimit)
      .map((s) => [s.name, new RateLimiter(s.config.rateLimit!.requests, s.config.rateLimit!.perSeconds)]),
  );
  const freebies = new Map<string, number>();
  const charges = new ChargeBatcher(deps.ledger);
  const maxBody = deps.maxBodyBytes ?? 10 * 1024 * 1024;

  for (const s of deps.services) {
    if (s.config.mode !== 'free' && !deps.ledger.getAccount(revenueAccount(s.name))) {
      deps.ledger.createAccount({
        id: revenueAccount(s.name),
        kind: 'service',
        name: `revenue of ${s.name}`,
      });
    }
  }

  const match = (req: IncomingMessage): Service | undefined => {
    const host = req.headers.host ?? '';
    const path = req.url ?? '/';
    return deps.services.find((s) => path.startsWith(s.pathPrefix) && (!s.host || s.host.test(host)));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      deps.log.error({ err }, 'proxy request failed');
      if (!res.headersSent)
        sendJson(res, err instanceof LedgerError ? err.status : 502, {
          error: {
            code: err instanceof LedgerError ? err.code : 'UPSTREAM_FAILED',
            message: (err as Error).message,
          },
        });
      else res.destroy();
    });
  });
  // Long streams must never be cut by a server timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && path === '/.well-known/l402.json')
      return sendJson(res, 200, discovery(deps.services));
    if (req.method === 'GET' && path === '/l402/quote') return quote(req, res);
    if (req.method === 'POST' && path === '/l402/topup') return topUp(req, res);
    const service = match(req);
    if (!service)
      return sendJson(res, 404, {
        error: { code: 'NO_SERVICE', message: 'no service is configured for this path' },
      });
    if (service.allow && !service.allow.some((r) => r.test(path)))
      return sendJson(res, 403, { error: { code: 'PATH_NOT_ALLOWED', message: 'this path is not offered' } });
    const hasBody =
      req.headers['content-length'] !== undefined
        ? req.headers['content-length'] !== '0'
        : req.headers['transfer-encoding'] !== undefined;
    const body = hasBody ? await readBody(req, maxBody) : EMPTY;
    if (body === undefined)
      return sendJson(res, 413, {
        error: { code: 'BODY_TOO_LARGE', message: `request bodies are limited to ${maxBody} bytes` },
      });

    if (service.config.mode === 'free') return forward(service, req, res, body, undefined);
    if (service.config.mode === 'freebie') {
      const ip = req.socket.remoteAddress ?? '';
      const used = freebies.get(`${service.name}|${ip}`) ?? 0;
      if (used < (service.config.freeRequests ?? 0) && !req.headers.authorization) {
        freebies.set(`${service.name}|${ip}`, used + 1);
        return forward(service, req, res, body, undefined);
      }
    }

    const auth = await deps.gate.authorize(req.headers.authorization, service.name);
    if (!auth.ok) return challenge(service, res, auth.message);
    const wait = limiters.get(service.name)?.take(auth.tokenId) ?? 0;
    if (wait > 0)
      return sendJson(
        res,
        429,
        { error: { code: 'RATE_LIMITED', message: 'too many requests for this credential' } },
        { 'retry-after': String(Math.ceil(wait / 1000)) },
      );

    // What this request may cost at most, reserved before it goes upstream.
    const metered = service.models !== undefined && METERED_PATHS.has(path) && req.method === 'POST';
    let parsed: Record<string, unknown> | undefined;
    if (metered) {
      try {
        parsed = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        return sendJson(res, 400, {
          error: { code: 'INVALID_JSON', message: 'the request body is not JSON' },
        });
      }
    }
    const account = deps.ledger.getAccount(auth.accountId);
    const available = account ? availableOf(account) - charges.unwritten(auth.accountId) : 0n;
    const pricing = metered
      ? pricingFor(service, typeof parsed!['model'] === 'string' ? (parsed!['model'] as string) : undefined)
      : undefined;
    let reserveAmount: bigint;
    const bound = pricing ? worstCase(pricing, parsed!, path) : undefined;
    if (pricing) {
      reserveAmount = bound ?? available;
    } else {
      reserveAmount = service.pricePerRequest ?? 0n;
    }
    if (reserveAmount <= 0n && pricing) reserveAmount = 1n;
    if (available < reserveAmount || available <= 0n)
      return challenge(
        service,
        res,
        'the credit of this credential is used up; pay a new challenge or top it up',
      );
    let reservation: string | undefined;
    let charged: Promise<void> | undefined;
    if (reserveAmount > 0n && pricing) {
      // Metered: reserve the worst case now, post what was used at the end.
      const r = deps.ledger.transfer({
        debitAccountId: auth.accountId,
        creditAccountId: revenueAccount(service.name),
        amount: msat(reserveAmount),
        code: 'l402_usage',
        pending: true,
        memo: path,
      });
      reservation = r.value.id;
      charged = r.durable;
    } else if (reserveAmount > 0n) {
      // A fixed price is charged up front, aggregated with the credential's other requests of
      // this moment into one ledger write that becomes durable while the upstream works.
      charged = charges.charge(auth.accountId, revenueAccount(service.name), reserveAmount);
      reservation = auth.accountId;
    }
    res.setHeader(CREDIT_HEADER, String(available - reserveAmount));
    let outBody = body;
    const stream = parsed?.['stream'] === true;
    if (parsed && stream && path !== '/v1/embeddings') {
      // Ask for the usage chunk, so the bill is what the upstream counted.
      parsed['stream_options'] = {
        ...((parsed['stream_options'] as object | undefined) ?? {}),
        include_usage: true,
      };
      outBody = Buffer.from(JSON.stringify(parsed));
    }
    // With an output limit the upstream cannot outrun the reservation; without one, the whole
    // credit is reserved and the stream is cut when the estimate reaches it.
    const billing: Billing = {
      reservation,
      reserved: msat(reserveAmount),
      pricing,
      path,
      parsed,
      stream,
      unbounded: pricing !== undefined && bound === undefined,
      revenue: revenueAccount(service.name),
      ...(charged ? { charged } : {}),
    };
    return forward(service, req, res, outBody, billing);
  }

  interface Billing {
    reservation?: string;
    reserved: Msat;
    pricing?: ReturnType<typeof pricingFor>;
    path: string;
    parsed?: Record<string, unknown>;
    stream: boolean;
    unbounded: boolean;
    /** For fixed prices: the up-front charge becoming durable. */
    charged?: Promise<void>;
    revenue: string;
  }

  async function challenge(service: Service, res: ServerResponse, message: string): Promise<void> {
    const c = await deps.gate.challenge({
      name: service.name,
      creditMsat: service.credit,
      lifetimeSeconds: service.config.lifetimeSeconds,
      ...(service.config.capabilities ? { capabilities: service.config.capabilities } : {}),
    });
    sendJson(
      res,
      402,
      {
        error: { code: 'PAYMENT_REQUIRED', message },
        invoice: c.invoice,
        creditMsat: service.credit.toString(),
      },
      { 'www-authenticate': c.headers, 'cache-control': 'no-store' },
    );
  }

  /** Posts what was used (never more than reserved) or voids the reservation. Durable before it returns. */
  async function settle(b: Billing | undefined, used: bigint | undefined): Promise<void> {
    if (!b?.reservation) return;
    if (!b.pricing) {
      // Fixed price, charged up front: refund it if the upstream failed.
      await b.charged;
      if (used === 0n) await charges.refund(b.reservation, b.revenue, b.reserved);
      return;
    }
    const charge = used === undefined ? b.reserved : used > b.reserved ? b.reserved : used;
    const applied =
      charge > 0n
        ? deps.ledger.post(b.reservation, msat(charge))
        : deps.ledger.void(b.reservation, 'nothing used');
    await applied.durable;
  }

  function forward(
    service: Service,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    billing: Billing | undefined,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const target = new URL(req.url ?? '/', service.upstream);
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (v !== undefined && !REQUEST_DROP.has(k)) headers[k] = v;
      for (const [k, v] of Object.entries(service.config.headers ?? {})) headers[k.toLowerCase()] = v;
      headers['content-length'] = String(body.length);
      headers['host'] = target.host;
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const upstream = send(
        target,
        { method: req.method, headers, agent: target.protocol === 'https:' ? agents.https : agents.http },
        (up) => {
          void relay(up, res, billing).then(resolve, reject);
        },
      );
      upstream.on('error', (err) => {
        void settle(billing, 0n).finally(() => {
          if (!res.headersSent)
            sendJson(res, 502, { error: { code: 'UPSTREAM_UNAVAILABLE', message: err.message } });
          else res.destroy();
          resolve();
        });
      });
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy();
      });
      upstream.end(body);
    });
  }

  async function relay(
    up: IncomingMessage,
    res: ServerResponse,
    billing: Billing | undefined,
  ): Promise<void> {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers))
      if (v !== undefined && !RESPONSE_DROP.has(k)) headers[k] = v;
    if (billing?.pricing && billing.stream) delete headers['content-length'];
    // Nothing of the response leaves before its charge (or reservation) is on disk: a crash can
    // never hand out a paid response that the ledger does not know about. The write started
    // before the request went upstream, so this wait is normally already over.
    if (billing?.charged) await billing.charged;
    res.writeHead(up.statusCode ?? 502, headers);
    if (!billing?.pricing) {
      // Per-request billing (or free): pass bytes through untouched, end once the charge is durable.
      up.pipe(res, { end: false });
      await new Promise<void>((resolve, reject) => {
        up.once('end', resolve);
        up.once('error', reject);
        res.once('close', resolve);
      });
      await settle(billing, (up.statusCode ?? 500) < 400 ? billing?.reserved : 0n);
      res.end();
      return;
    }
    const pricing = billing.pricing;
    const promptEstimate = estimateTokens(promptText(billing.parsed ?? {}));
    if (!billing.stream) {
      // Forward as it comes; keep a bounded copy to read the usage at the end.
      const copy: Buffer[] = [];
      let size = 0;
      for await (const chunk of up) {
        const b = chunk as Buffer;
        if (size < 4 * 1024 * 1024) copy.push(b);
        size += b.length;
        if (!res.write(b)) await new Promise((r) => res.once('drain', r));
      }
      let usage: Usage | undefined;
      try {
        usage = (JSON.parse(Buffer.concat(copy).toString('utf8')) as { usage?: Usage }).usage;
      } catch {
        usage = undefined;
      }
      const ok = (up.statusCode ?? 500) < 400;
      const used = !ok
        ? 0n
        : usage
          ? costOf(pricing, BigInt(usage.prompt_tokens ?? 0), BigInt(usage.completion_tokens ?? 0))
          : costOf(pricing, promptEstimate, estimateTokens(Buffer.concat(copy).toString('utf8')));
      await settle(billing, used);
      res.end();
      return;
    }
    // Streams: forward event by event; cut cleanly when the credit reserved for this request is used up.
    const meter = new StreamMeter();
    const model =
      typeof billing.parsed?.['model'] === 'string' ? (billing.parsed['model'] as string) : undefined;
    let cut = false;
    up.setEncoding('utf8');
    for await (const chunk of up) {
      const events = meter.push(chunk as string);
      for (const event of events) {
        const spent = costOf(pricing, promptEstimate, meter.estimatedOutputTokens());
        if (billing.unbounded && !meter.usage && spent > billing.reserved) {
          cut = true;
          break;
        }
        if (!res.write(event)) await new Promise((r) => res.once('drain', r));
      }
      if (cut) break;
    }
    if (cut) {
      up.destroy();
      const used = billing.reserved;
      await settle(billing, used);
      res.end(closingEvents(billing.path, model));
      return;
    }
    const rest = meter.rest();
    const u = meter.usage;
    const used = u
      ? costOf(pricing, BigInt(u.prompt_tokens ?? 0), BigInt(u.completion_tokens ?? 0))
      : costOf(pricing, promptEstimate, meter.estimatedOutputTokens());
    await settle(billing, (up.statusCode ?? 500) < 400 ? used : 0n);
    res.end(rest);
  }

  /** POST /l402/topup?service=NAME&amountMsat=N with the credential: an invoice that adds credit to it. */
  async function topUp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const s = deps.services.find((x) => x.name === q.get('service'));
    if (!s || s.config.mode === 'free')
      return sendJson(res, 404, { error: { code: 'NO_SERVICE', message: 'unknown or free service' } });
    const raw = q.get('amountMsat') ?? s.credit.toString();
    if (!/^[1-9][0-9]{0,15}$/.test(raw))
      return sendJson(res, 400, {
        error: { code: 'INVALID_AMOUNT', message: 'amountMsat must be a positive integer' },
      });
    const auth = await deps.gate.authorize(req.headers.authorization, s.name);
    if (!auth.ok) return sendJson(res, 401, { error: { code: 'INVALID_CREDENTIAL', message: auth.message } });
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

  function quote(req: IncomingMessage, res: ServerResponse): void {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const s = deps.services.find((x) => x.name === q.get('service'));
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
    sendJson(res, 200, {
      service: s.name,
      creditMsat: s.credit.toString(),
      ...(s.pricePerRequest !== undefined ? { perRequestMsat: s.pricePerRequest.toString() } : {}),
      ...(pricing
        ? { estimateMsat: costOf(pricing, BigInt(promptTokens), BigInt(maxTokens)).toString() }
        : {}),
    });
  }

  return server;
}

function discovery(services: Service[]): unknown {
  return {
    version: 1,
    protocol: 'L402',
    services: services.map((s) => ({
      name: s.name,
      description: s.config.description ?? '',
      pathPrefix: s.pathPrefix,
      mode: s.config.mode,
      ...(s.config.mode === 'freebie' ? { freeRequests: s.config.freeRequests } : {}),
      creditMsat: s.credit.toString(),
      ...(s.pricePerRequest !== undefined ? { pricePerRequestMsat: s.pricePerRequest.toString() } : {}),
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
    })),
  };
}

const EMPTY = Buffer.alloc(0);

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

export type { Msat };
