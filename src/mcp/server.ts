import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { ToolCallback } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { ShapeOutput, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { createL402Fetch, L402ClientError, readInvoice, type L402Payer } from '../l402/client.js';
import { decodeRequest, formatCredential } from '../l402/mpp.js';
import { createMppClient } from '../l402/mpp-client.js';
import { parseChallenge } from '../l402/header.js';
import { paymentChallenges } from '../l402/mpp-client.js';
import { guardedFetch } from '../net/guarded-fetch.js';
import { OutboundGuard } from '../net/outbound.js';

/**
 * The MCP server for agents: a client of the gateway's HTTP API bound to one account by its API
 * key (the key's scopes are what the agent can do; the gateway applies the account's policy,
 * approvals and audit to every spend). It holds no money and no state but the paid fetch's
 * session budget.
 */
export interface McpOptions {
  /** The gateway's HTTP API, e.g. http://127.0.0.1:8402. */
  gatewayUrl: string;
  accountId: string;
  /** An API key of that account (its scopes bound what the tools may do). */
  apiKey: string;
  /** Paid fetch: the most one request may cost (msat). */
  maxCostPerRequestMsat: bigint;
  /** Paid fetch: the most this server (the agent's session) spends in all (msat). */
  maxCostPerSessionMsat: bigint;
  /** Paid fetch: hosts or CIDR blocks allowed although not public (e.g. 127.0.0.1/32). */
  fetchAllow?: readonly string[];
  /** The most a payment's routing fee may be (msat, default 10,000). */
  maxFeeMsat?: bigint;
  fetch?: typeof fetch;
}

/** Codes after which an agent must stop (retrying cannot succeed without a human). */
export const STOP_CODES = [
  'ACCOUNT_FROZEN',
  'NO_POLICY',
  'SPENDING_DISABLED',
  'PAYMENT_CAP_EXCEEDED',
  'QUOTA_EXCEEDED',
  'BALANCE_SHARE_EXCEEDED',
  'RESERVE_REQUIRED',
  'PAYEE_RESTRICTED',
  'INSUFFICIENT_FUNDS',
  'FORBIDDEN',
  'UNAUTHORIZED',
  'MAX_COST_EXCEEDED',
  'SESSION_BUDGET_EXHAUSTED',
  'OUTBOUND_URL_FORBIDDEN',
] as const;
/** Codes after which waiting (retryAfterMs) and trying again can succeed. */
export const WAIT_CODES = ['RATE_LIMITED', 'TOO_MANY_IN_FLIGHT'] as const;

const STOP_TEXT = `On an error the result has {code, message, stop}. stop=true (codes ${STOP_CODES.join(', ')}) means a policy or a limit refused it: do NOT retry, tell the user. ${WAIT_CODES.join(' and ')} mean wait retryAfterMs, then try again at most once.`;
const PENDING_TEXT =
  'A payment answered with status "awaiting_approval" (awaitingApproval=true, the policy code NEEDS_APPROVAL) waits for an operator: poll get_payment every few seconds (approvals expire after 15 minutes) instead of paying again; "pending" is in flight: poll too.';

class ToolError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const ok = (value: unknown, note?: string): CallToolResult => ({
  content: [{ type: 'text', text: (note ? note + '\n' : '') + JSON.stringify(value) }],
  structuredContent: value as Record<string, unknown>,
});

function failed(err: unknown): CallToolResult {
  const code =
    err instanceof ToolError
      ? err.code
      : err instanceof L402ClientError
        ? err.code
        : ((err as { code?: string }).code ?? 'ERROR');
  const message = err instanceof Error ? err.message : String(err);
  const stop = (STOP_CODES as readonly string[]).includes(code);
  const body = {
    code,
    message,
    stop,
    ...(err instanceof ToolError && err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
  };
  return {
    isError: true,
    content: [{ type: 'text', text: `${stop ? 'STOP (do not retry): ' : ''}${code}: ${message}` }],
    structuredContent: body,
  };
}

const MsatText = z.string().regex(/^(0|[1-9][0-9]{0,15})$/, 'msat as a decimal string');

/** Builds the MCP server (tools only) on a gateway API client. */
export function buildMcpServer(
  o: McpOptions,
  budget = new SessionBudget(o.maxCostPerSessionMsat),
): McpServer {
  const base = o.fetch ?? fetch;
  const gateway = o.gatewayUrl.replace(/\/$/, '');
  const acct = `/v1/accounts/${encodeURIComponent(o.accountId)}`;

  async function api(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await base(gateway + path, {
      method,
      headers: {
        authorization: `Bearer ${o.apiKey}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const json = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    if (!res.ok) {
      const e = (json['error'] ?? {}) as {
        code?: string;
        message?: string;
        details?: { retryAfterMs?: number };
      };
      const retry = res.headers.get('retry-after');
      throw new ToolError(
        e.code ?? `HTTP_${res.status}`,
        e.message ?? text,
        e.details?.retryAfterMs ?? (retry ? Number(retry) * 1000 : undefined),
      );
    }
    return json;
  }

  const paymentView = (p: Record<string, unknown>): Record<string, unknown> => ({
    ...p,
    awaitingApproval: p['status'] === 'awaiting_approval',
  });

  const server = new McpServer({ name: 'coulomb', version: '1.0.0' });
  const tool = <S extends ZodRawShapeCompat>(
    name: string,
    description: string,
    shape: S,
    annotations: ToolAnnotations,
    run: (args: ShapeOutput<S>) => Promise<CallToolResult>,
  ): void => {
    const cb = async (args: ShapeOutput<S>): Promise<CallToolResult> => {
      try {
        return await run(args);
      } catch (err) {
        return failed(err);
      }
    };
    // For a raw shape S the SDK calls back with ShapeOutput<S>; TypeScript cannot resolve its
    // conditional callback type for a generic S, hence the one cast.
    server.registerTool(
      name,
      { description, inputSchema: shape, annotations },
      cb as unknown as ToolCallback<S>,
    );
  };

  tool(
    'get_balance',
    `The bound account (${o.accountId}): balance and available msat. ${STOP_TEXT}`,
    {},
    { readOnlyHint: true },
    async () => ok(await api('GET', acct)),
  );
  tool(
    'list_history',
    `Recent payments of the account, newest first (paged: pass nextCursor as cursor). ${STOP_TEXT}`,
    { limit: z.number().int().min(1).max(500).optional(), cursor: z.string().max(200).optional() },
    { readOnlyHint: true },
    async ({ limit, cursor }) => {
      const q = new URLSearchParams();
      if (limit !== undefined) q.set('limit', String(limit));
      if (cursor !== undefined) q.set('cursor', cursor);
      return ok(await api('GET', `${acct}/payments${q.size ? `?${q}` : ''}`));
    },
  );
  tool(
    'create_invoice',
    `Creates a BOLT11 invoice paying into the account. ${STOP_TEXT}`,
    {
      amountMsat: MsatText,
      description: z.string().max(600).optional(),
      expirySeconds: z.number().int().min(60).max(31_536_000).optional(),
    },
    { openWorldHint: false },
    async (a) => ok(await api('POST', `${acct}/invoices`, a)),
  );
  tool(
    'pay_invoice',
    `Pays a BOLT11 invoice from the account, within its spending policy. Give an idempotencyKey and reuse it if you must retry the same payment. ${PENDING_TEXT} ${STOP_TEXT}`,
    {
      invoice: z.string().min(10).max(8000),
      amountMsat: MsatText.optional(),
      maxFeeMsat: MsatText.optional(),
      idempotencyKey: z.string().min(1).max(200).optional(),
    },
    { destructiveHint: true, openWorldHint: true },
    async ({ invoice, ...rest }) =>
      ok(paymentView(await api('POST', `${acct}/payments`, { request: invoice, ...rest }))),
  );
  tool(
    'keysend',
    `Sends a spontaneous payment (keysend) to a node public key, within the account's policy. ${PENDING_TEXT} ${STOP_TEXT}`,
    {
      destination: z.string().regex(/^0[23][0-9a-f]{64}$/),
      amountMsat: MsatText,
      maxFeeMsat: MsatText.optional(),
      idempotencyKey: z.string().min(1).max(200).optional(),
    },
    { destructiveHint: true, openWorldHint: true },
    async ({ destination, amountMsat, ...rest }) =>
      ok(
        paymentView(await api('POST', `${acct}/payments`, { keysend: { destination, amountMsat }, ...rest })),
      ),
  );
  tool(
    'get_payment',
    `A payment by id: poll it while it is pending (in flight, or awaiting an operator's approval). ${STOP_TEXT}`,
    { paymentId: z.string().min(1).max(200) },
    { readOnlyHint: true },
    async ({ paymentId }) =>
      ok(paymentView(await api('GET', `${acct}/payments/${encodeURIComponent(paymentId)}`))),
  );

  // ---- paid HTTP fetch (L402 or MPP), within a per-request and a per-session cap ----
  const guard = new OutboundGuard({ allow: o.fetchAllow ?? [] });
  const target = guardedFetch(guard);
  /** The credential a paid 402 challenge gives once its invoice's preimage is known. */
  const credentialFor = (
    challenges: Headers | undefined,
    invoice: string,
  ): ((p: string) => string) | undefined => {
    if (!challenges) return undefined;
    const l402 = parseChallenge(challenges.get('www-authenticate') ?? '');
    if (l402?.invoice === invoice) return (p) => `L402 ${l402.macaroon}:${p}`;
    const offer = paymentChallenges(new Response(null, { status: 402, headers: challenges })).find(
      (c) => c.intent === 'charge' && decodeRequest(c.request)?.methodDetails?.invoice === invoice,
    );
    return offer ? (p) => formatCredential({ challenge: offer, payload: { preimage: p } }) : undefined;
  };
  const feeOf = (p: Record<string, unknown>): bigint =>
    typeof p['feeMsat'] === 'string' && /^[0-9]+$/.test(p['feeMsat']) ? BigInt(p['feeMsat']) : 0n;
  const queue = new KeyedQueue();
  tool(
    'paid_fetch',
    `Fetches an http(s) URL, paying its 402 challenge (L402, else MPP charge) from the account. maxCostMsat caps this request, routing fee included (and cannot exceed the server's cap of ${o.maxCostPerRequestMsat} msat); the whole session may spend at most ${o.maxCostPerSessionMsat} msat, and a call holds its maxCostMsat of it until its payment is final. When the payment is not final yet (code PAYMENT_PENDING, e.g. awaiting an operator's approval) the result names paymentId: call paid_fetch again with the same url and that paymentId (never without it, which would pay again) once get_payment says succeeded. ${STOP_TEXT}`,
    {
      url: z.string().url().max(4000),
      method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).optional(),
      body: z.string().max(1_000_000).optional(),
      contentType: z.string().max(200).optional(),
      maxCostMsat: MsatText,
      paymentId: z.string().min(1).max(200).optional(),
    },
    { destructiveHint: true, openWorldHint: true },
    (a) =>
      queue.run('fetch', async () => {
        const init: RequestInit = {
          method: a.method ?? 'GET',
          ...(a.body !== undefined ? { body: a.body } : {}),
          ...(a.contentType ? { headers: { 'content-type': a.contentType } } : {}),
        };
        const answer = async (res: Response, paid: bigint): Promise<CallToolResult> => {
          const text = await res.text();
          return ok({
            status: res.status,
            paidMsat: paid.toString(),
            sessionSpentMsat: budget.spent.toString(),
            contentType: res.headers.get('content-type') ?? '',
            body: text.length > 100_000 ? text.slice(0, 100_000) : text,
            ...(res.headers.get('payment-receipt') ? { receipt: res.headers.get('payment-receipt') } : {}),
          });
        };
        if (a.paymentId !== undefined) return resume(a.paymentId, a.url, init, answer);
        const cap = BigInt(a.maxCostMsat);
        if (cap > o.maxCostPerRequestMsat)
          throw new ToolError(
            'MAX_COST_EXCEEDED',
            `maxCostMsat is above this server's cap of ${o.maxCostPerRequestMsat}`,
          );
        // Check and reserve in one synchronous step: the budget is shared by every concurrent call.
        const max = budget.reserve(cap);
        if (max <= 0n) throw new ToolError('SESSION_BUDGET_EXHAUSTED', 'this session has spent its budget');
        let held = max;
        let paid = 0n;
        let challenges: Headers | undefined;
        let outcomeUnknown = false;
        // Keeps the last 402's challenges: a payment left pending is resumed with them.
        const watched: typeof fetch = async (input, i) => {
          const r = await target(input, i);
          if (r.status === 402) challenges = new Headers(r.headers);
          return r;
        };
        const payer: L402Payer = {
          async pay(invoice) {
            const amount = readInvoice(invoice)?.amountMsat ?? max;
            const feeCap = o.maxFeeMsat ?? 10_000n;
            // Until the gateway answers, the payment may have gone: a lost answer keeps it counted.
            outcomeUnknown = true;
            const p = await api('POST', `${acct}/payments`, {
              request: invoice,
              maxFeeMsat: String(max - amount < feeCap ? max - amount : feeCap),
            }).catch((err: unknown) => {
              if (err instanceof ToolError) outcomeUnknown = false; // the gateway refused it
              throw err;
            });
            outcomeUnknown = false;
            if (p['status'] === 'succeeded' && typeof p['preimage'] === 'string') {
              paid = amount + feeOf(p);
              budget.settle(held, paid);
              held = 0n;
              return { preimage: p['preimage'] };
            }
            const credential = credentialFor(challenges, invoice);
            if ((p['status'] === 'pending' || p['status'] === 'awaiting_approval') && credential) {
              // The money may still go: the reservation stays held until the payment is final.
              budget.hold(String(p['id']), {
                url: a.url,
                reservedMsat: held,
                amountMsat: amount,
                credential,
              });
              held = 0n;
              throw new ToolError(
                'PAYMENT_PENDING',
                `payment ${String(p['id'])} is ${String(p['status'])}: poll get_payment, then call paid_fetch with paymentId ${String(p['id'])} (do not call it without, that would pay again)`,
              );
            }
            throw new ToolError('PAYMENT_FAILED', `payment ${String(p['id'])} ${String(p['status'])}`);
          },
        };
        try {
          let res = await watched(a.url, init);
          if (res.status === 402) {
            const challenge = res.headers.get('www-authenticate') ?? '';
            await res.arrayBuffer().catch(() => undefined);
            if (parseChallenge(challenge))
              res = await createL402Fetch({ payer, maxCostMsat: max, fetch: watched })(a.url, init);
            else if (paymentChallenges(res).some((c) => c.intent === 'charge'))
              res = await createMppClient({ payer, maxCostMsat: max, fetch: watched }).fetch(a.url, init);
            if (res.status === 402 && paid === 0n)
              throw new ToolError(
                'MAX_COST_EXCEEDED',
                `the price is above the cap of ${max} msat for this request (or no supported challenge)`,
              );
          }
          return await answer(res, paid);
        } finally {
          budget.settle(held, outcomeUnknown ? held : 0n);
        }
      }),
  );

  /** paid_fetch with a payment left pending earlier: its preimage, once settled, buys the request. */
  async function resume(
    paymentId: string,
    url: string,
    init: RequestInit,
    answer: (res: Response, paid: bigint) => Promise<CallToolResult>,
  ): Promise<CallToolResult> {
    const held = budget.held(paymentId);
    if (!held || held.url !== url)
      throw new ToolError('UNKNOWN_PAYMENT', `no pending paid_fetch payment ${paymentId} for this url`);
    const p = await api('GET', `${acct}/payments/${encodeURIComponent(paymentId)}`);
    if (p['status'] === 'pending' || p['status'] === 'awaiting_approval')
      throw new ToolError('PAYMENT_PENDING', `payment ${paymentId} is still ${String(p['status'])}`);
    if (p['status'] !== 'succeeded' || typeof p['preimage'] !== 'string') {
      budget.release(paymentId, 0n);
      throw new ToolError('PAYMENT_FAILED', `payment ${paymentId} ${String(p['status'])}`);
    }
    const paid = held.amountMsat + feeOf(p);
    budget.release(paymentId, paid);
    const headers = new Headers(init.headers);
    headers.set('authorization', held.credential(p['preimage']));
    return answer(await target(url, { ...init, headers }), paid);
  }

  // ---- escrow, task market, streams: the gateway's API, as this account ----
  const Json = z.record(z.string(), z.unknown());
  tool(
    'escrow_create',
    `Creates an escrow paid by this account (body as POST /v1/accounts/:id/escrows: payeeAccountId, amountMsat, description, condition, funding, timeoutSeconds?). ${STOP_TEXT}`,
    { body: Json },
    { destructiveHint: true },
    async ({ body }) => ok(await api('POST', `${acct}/escrows`, body)),
  );
  tool(
    'escrow_get',
    `An escrow by id. ${STOP_TEXT}`,
    { escrowId: z.string().min(1).max(200) },
    { readOnlyHint: true },
    async ({ escrowId }) => ok(await api('GET', `${acct}/escrows/${encodeURIComponent(escrowId)}`)),
  );
  tool(
    'escrow_action',
    `Acts on an escrow: fund (from the account), approve (release to the payee), cancel, preimage, verify. ${STOP_TEXT}`,
    {
      escrowId: z.string().min(1).max(200),
      action: z.enum(['fund', 'approve', 'cancel', 'preimage', 'verify']),
      body: Json.optional(),
    },
    { destructiveHint: true },
    async ({ escrowId, action, body }) =>
      ok(await api('POST', `${acct}/escrows/${encodeURIComponent(escrowId)}/${action}`, body ?? {})),
  );
  tool(
    'task_list',
    `Tasks of the market (open ones to claim, or this account's with mine=true). ${STOP_TEXT}`,
    {
      state: z.string().max(20).optional(),
      capability: z.string().max(200).optional(),
      mine: z.boolean().optional(),
    },
    { readOnlyHint: true },
    async (q) => {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
      return ok(await api('GET', `${acct}/tasks${p.size ? `?${p}` : ''}`));
    },
  );
  tool(
    'task_create',
    `Posts a task whose reward is locked from this account (body as POST /v1/accounts/:id/tasks). ${STOP_TEXT}`,
    { body: Json },
    { destructiveHint: true },
    async ({ body }) => ok(await api('POST', `${acct}/tasks`, body)),
  );
  tool(
    'task_action',
    `Acts on a task: claim or submit (as worker; submit needs body {result}), accept or reject (as poster; reject needs {reason}). ${STOP_TEXT}`,
    {
      taskId: z.string().min(1).max(200),
      action: z.enum(['claim', 'submit', 'accept', 'reject']),
      body: Json.optional(),
    },
    { destructiveHint: true },
    async ({ taskId, action, body }) =>
      ok(await api('POST', `${acct}/tasks/${encodeURIComponent(taskId)}/${action}`, body ?? {})),
  );
  tool(
    'stream_start',
    `Starts a streaming payment from this account (body as POST /v1/accounts/:id/streams). ${STOP_TEXT}`,
    { body: Json },
    { destructiveHint: true },
    async ({ body }) => ok(await api('POST', `${acct}/streams`, body)),
  );
  tool(
    'stream_stop',
    `Stops a stream of this account. ${STOP_TEXT}`,
    { streamId: z.string().min(1).max(200) },
    { destructiveHint: true, idempotentHint: true },
    async ({ streamId }) => ok(await api('POST', `${acct}/streams/${encodeURIComponent(streamId)}/stop`)),
  );
  return server;
}

/** A paid_fetch payment not final yet: what it holds of the budget and how to resume it. */
export interface HeldPayment {
  url: string;
  reservedMsat: bigint;
  amountMsat: bigint;
  credential: (preimage: string) => string;
}

/** At most this many paid_fetch payments may wait (pending, awaiting approval) at once. */
export const MAX_HELD_PAYMENTS = 100;

/**
 * What the paid fetch may still spend in this session (the life of this MCP server process),
 * shared by every call (HTTP mode builds an McpServer per request): a call reserves its cap
 * before paying and settles to the actual amount + fee; a payment left pending keeps its
 * reservation until it is final.
 */
export class SessionBudget {
  spent = 0n;
  private reserved = 0n;
  private readonly pending = new Map<string, HeldPayment>();
  constructor(private readonly max: bigint) {}
  left(): bigint {
    return this.max - this.spent - this.reserved;
  }
  /** Reserves up to `want` (what is left if less) and returns it; 0 when nothing is left. */
  reserve(want: bigint): bigint {
    if (this.pending.size >= MAX_HELD_PAYMENTS)
      throw new ToolError('TOO_MANY_IN_FLIGHT', 'too many paid_fetch payments are pending', 5_000);
    const left = this.left();
    const take = want < left ? want : left;
    if (take <= 0n) return 0n;
    this.reserved += take;
    return take;
  }
  /** Ends a reservation: `actual` (≤ the reservation) is spent, the rest is freed. */
  settle(reservedMsat: bigint, actual: bigint): void {
    this.reserved -= reservedMsat;
    this.spent += actual;
  }
  hold(paymentId: string, held: HeldPayment): void {
    this.pending.set(paymentId, held);
  }
  held(paymentId: string): HeldPayment | undefined {
    return this.pending.get(paymentId);
  }
  /** The pending payment is final: its reservation ends with `actual` spent. */
  release(paymentId: string, actual: bigint): void {
    const h = this.pending.get(paymentId);
    if (!h) return;
    this.pending.delete(paymentId);
    this.settle(h.reservedMsat, actual);
  }
}

/** `coulomb mcp` over stdio: MCP messages on stdin/stdout only. */
export async function serveStdio(o: McpOptions): Promise<void> {
  await buildMcpServer(o).connect(new StdioServerTransport());
}

/**
 * `coulomb mcp --http`: Streamable HTTP at `/mcp`, stateless (a server per request), one
 * session budget for the process. Every request needs `Authorization: Bearer <token>` (a secret
 * of this MCP server, never the account's key) and, from a browser, an allowed Origin.
 */
export async function serveHttp(
  o: McpOptions,
  http: { host: string; port: number; token: string; allowedOrigins?: readonly string[] },
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  if (http.token.length < 16) throw new Error('the MCP HTTP token must have at least 16 characters');
  const budget = new SessionBudget(o.maxCostPerSessionMsat);
  const want = createHash('sha256').update(`Bearer ${http.token}`).digest();
  const authorized = (req: IncomingMessage): boolean =>
    timingSafeEqual(
      createHash('sha256')
        .update(req.headers.authorization ?? '')
        .digest(),
      want,
    );
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (
      status: number,
      code: string,
      message: string,
      headers: Record<string, string> = {},
    ): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    if (path !== '/mcp') return reply(404, 'NOT_FOUND', 'the MCP endpoint is /mcp');
    const origin = req.headers.origin;
    if (origin !== undefined && !(http.allowedOrigins ?? []).includes(origin))
      return reply(403, 'ORIGIN_FORBIDDEN', 'this Origin may not use the MCP server');
    if (!authorized(req))
      return reply(401, 'UNAUTHORIZED', 'a bearer token is required', { 'www-authenticate': 'Bearer' });
    if (req.method !== 'POST')
      return reply(405, 'METHOD_NOT_ALLOWED', 'this stateless server takes POST only', { allow: 'POST' });
    const mcp = buildMcpServer(o, budget);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      enableJsonResponse: true,
    });
    res.on('close', () => {
      void transport.close();
      void mcp.close();
    });
    mcp
      .connect(transport)
      .then(() => transport.handleRequest(req, res))
      .catch(() => {
        if (!res.headersSent) reply(500, 'MCP_ERROR', 'the MCP request failed');
      });
  });
  await new Promise<void>((r) => server.listen(http.port, http.host, r));
  const addr = server.address();
  const url = `http://${http.host}:${typeof addr === 'object' && addr ? addr.port : http.port}/mcp`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
