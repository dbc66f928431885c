import { createServer, type Server } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import * as lnService from 'ln-service';
import * as ecc from 'tiny-secp256k1';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMcpServer, SessionBudget, type McpOptions } from '../../../src/mcp/server.js';

// A real signed BOLT11 invoice (the paid fetch reads its amount offline).
const key = Buffer.alloc(32, 7);
const destination = Buffer.from(ecc.pointFromScalar(key, true)!).toString('hex');
const preimages = new Map<string, string>();
// Invoice encoding functions ln-service has but our typings of it do not declare.
const { createSignedRequest, createUnsignedRequest } = lnService as unknown as {
  createUnsignedRequest(a: Record<string, unknown>): { hash: string; hrp: string; tags: unknown[] };
  createSignedRequest(a: Record<string, unknown>): { request: string };
};
function bolt11(amountMsat: bigint): string {
  const preimage = randomBytes(32);
  const u = createUnsignedRequest({
    network: 'regtest',
    mtokens: String(amountMsat),
    id: createHash('sha256').update(preimage).digest('hex'),
    destination,
    description: 'x',
    created_at: new Date().toISOString(),
    expires_at: new Date(Date.now() + 3600e3).toISOString(),
    cltv_delta: 40,
  });
  const signature = Buffer.from(ecc.sign(Buffer.from(u.hash, 'hex'), key)).toString('hex');
  const { request } = createSignedRequest({ destination, hrp: u.hrp, signature, tags: u.tags });
  preimages.set(request, preimage.toString('hex'));
  return request;
}

let paidSite: Server;
let site: string;
/** The fake gateway: every payment gets this status; a later GET sees `settleTo`. */
let status = 'succeeded';
let settleTo = 'succeeded';
const payments = new Map<string, string>();
/** The gateway's answer to a payment is lost (its outcome unknown to the MCP server). */
let lostAnswer = false;
const served: string[] = [];
const options = (): McpOptions => ({
  gatewayUrl: 'http://gateway.invalid',
  accountId: 'agent',
  apiKey: 'k',
  maxCostPerRequestMsat: 10_000n,
  maxCostPerSessionMsat: 5_000n,
  fetchAllow: ['127.0.0.1/32'],
  fetch: async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const path = new URL(String(input)).pathname;
    if (init?.method === 'GET') {
      const id = path.split('/').pop()!;
      const request = payments.get(id)!;
      const body =
        settleTo === 'succeeded'
          ? { id, status: 'succeeded', preimage: preimages.get(request), feeMsat: '7' }
          : { id, status: settleTo };
      return new Response(JSON.stringify(body), { status: 200 });
    }
    if (lostAnswer) throw new TypeError('fetch failed');
    const { request } = JSON.parse(String(init?.body)) as { request: string };
    const id = `p${payments.size + 1}`;
    payments.set(id, request);
    await new Promise((r) => setImmediate(r));
    const body =
      status === 'succeeded'
        ? { id, status, preimage: preimages.get(request), feeMsat: '7' }
        : { id, status };
    return new Response(JSON.stringify(body), { status: 201 });
  },
});

beforeAll(async () => {
  paidSite = createServer((req, res) => {
    if (req.headers.authorization) {
      served.push(req.headers.authorization);
      res.writeHead(200);
      return res.end('content');
    }
    res.writeHead(402, { 'www-authenticate': `L402 macaroon="AAAA", invoice="${bolt11(4_000n)}"` });
    res.end();
  });
  await new Promise<void>((r) => paidSite.listen(0, '127.0.0.1', r));
  site = `http://127.0.0.1:${(paidSite.address() as { port: number }).port}/x`;
});
afterAll(() => void paidSite.close());

async function clientOn(budget: SessionBudget): Promise<Client> {
  // As serveHttp does: a new McpServer per HTTP request, one SessionBudget for the process.
  const server = buildMcpServer(options(), budget);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const c = new Client({ name: 'unit', version: '1' });
  await c.connect(b);
  return c;
}
const fetchOn = (c: Client, extra: Record<string, string> = {}) =>
  c.callTool({ name: 'paid_fetch', arguments: { url: site, maxCostMsat: '5000', ...extra } });
const code = (r: Awaited<ReturnType<typeof fetchOn>>): unknown =>
  (r.structuredContent as { code?: string; status?: number }).code ??
  (r.structuredContent as { status?: number }).status;

describe('the paid fetch session budget', () => {
  it('is not overspent by concurrent calls on servers sharing it, and counts the routing fee', async () => {
    status = 'succeeded';
    payments.clear();
    const budget = new SessionBudget(5_000n);
    const cs = await Promise.all([clientOn(budget), clientOn(budget), clientOn(budget)]);
    const rs = await Promise.all(cs.map((c) => fetchOn(c)));
    expect(rs.map(code).sort()).toEqual([200, 'SESSION_BUDGET_EXHAUSTED', 'SESSION_BUDGET_EXHAUSTED']);
    expect(payments.size).toBe(1);
    expect(budget.spent).toBe(4_007n);
    expect(budget.left()).toBe(993n);
  });

  it('holds a pending payment against the budget and resumes it, never paying a second invoice', async () => {
    status = 'awaiting_approval';
    settleTo = 'awaiting_approval';
    payments.clear();
    served.length = 0;
    const budget = new SessionBudget(5_000n);
    const c = await clientOn(budget);
    const first = await fetchOn(c);
    const firstBody = first.structuredContent as { code: string; message: string };
    expect(firstBody.code).toBe('PAYMENT_PENDING');
    expect(firstBody.message).toContain('paymentId p1');
    expect(budget.left()).toBe(0n);
    // Called again without the id: nothing left to pay with, no new payment.
    expect(code(await fetchOn(c))).toBe('SESSION_BUDGET_EXHAUSTED');
    expect(code(await fetchOn(c, { paymentId: 'p1' }))).toBe('PAYMENT_PENDING');
    settleTo = 'succeeded';
    const done = await fetchOn(c, { paymentId: 'p1' });
    expect(done.structuredContent).toMatchObject({ status: 200, paidMsat: '4007', body: 'content' });
    expect(payments.size).toBe(1);
    expect(served).toEqual([`L402 AAAA:${preimages.get(payments.get('p1')!)}`]);
    expect(budget.spent).toBe(4_007n);
    expect(budget.left()).toBe(993n);
    expect(code(await fetchOn(c, { paymentId: 'p1' }))).toBe('UNKNOWN_PAYMENT');
  });

  it('keeps a payment whose answer was lost counted: it may have gone', async () => {
    status = 'succeeded';
    lostAnswer = true;
    try {
      const budget = new SessionBudget(5_000n);
      const r = await fetchOn(await clientOn(budget), { maxCostMsat: '4500' });
      expect(r.isError).toBe(true);
      expect(budget.spent).toBe(4_500n);
      expect(budget.left()).toBe(500n);
    } finally {
      lostAnswer = false;
    }
  });
});
