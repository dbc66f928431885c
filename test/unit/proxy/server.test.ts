import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { createProxy } from '../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let echo: Server;
let proxy: Server;
let url: string;
let seen: IncomingHttpHeaders[] = [];
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let gate: L402Gate;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  echo = createServer((req, res) => {
    seen.push(req.headers);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url }));
  });
  const upstream = await listen(echo);
  f = await paymentsFixture();
  const { services } = parseProxyConfig({
    services: [
      {
        name: 'open',
        pathPrefix: '/open/',
        upstream,
        mode: 'free',
        creditMsat: '0',
        headers: { Authorization: 'Bearer sk-secret', 'X-Org': 'acme' },
        allowPaths: ['^/open/ok'],
      },
      {
        name: 'trial',
        pathPrefix: '/trial/',
        upstream,
        mode: 'freebie',
        freeRequests: 2,
        pricePerRequestMsat: '10',
        creditMsat: '1000',
      },
      {
        name: 'slow',
        pathPrefix: '/slow/',
        upstream,
        mode: 'paid',
        pricePerRequestMsat: '10',
        creditMsat: '1000',
        rateLimit: { requests: 2, perSeconds: 60 },
      },
      {
        name: 'tok',
        pathPrefix: '/v1/',
        upstream,
        mode: 'paid',
        models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '1' } },
        creditMsat: '1000',
      },
    ],
  });
  gate = new L402Gate(new L402Authority(Buffer.alloc(32, 1)), f.lightning, f.service);
  proxy = createProxy({ services, gate, ledger: f.ledger, log: silentLog });
  url = await listen(proxy);
});
afterAll(() => {
  f.service.stop();
  proxy.closeAllConnections();
  proxy.close();
  echo.close();
});

async function credential(service: string): Promise<string> {
  const c = await gate.challenge({ name: service, creditMsat: 1000n as never, lifetimeSeconds: 60 });
  const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
  return `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
}

describe('proxy routing and limits', () => {
  it('injects the service headers upstream and never forwards the client credential', async () => {
    seen = [];
    const res = await fetch(`${url}/open/ok`, {
      headers: { authorization: 'L402 client-secret:00', 'x-client': 'yes' },
    });
    expect(res.status).toBe(200);
    expect(seen[0]).toMatchObject({ authorization: 'Bearer sk-secret', 'x-org': 'acme', 'x-client': 'yes' });
    expect(JSON.stringify(await res.json())).not.toContain('sk-secret');
  });

  it('refuses paths outside the allowlist and paths of no service', async () => {
    expect((await fetch(`${url}/open/other`)).status).toBe(403);
    const none = await fetch(`${url}/nothing`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('NO_SERVICE');
  });

  it('gives N free requests per client, then asks for payment', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${url}/trial/x`)).status);
    expect(statuses).toEqual([200, 200, 402]);
  });

  it('rate-limits per credential with 429 and Retry-After', async () => {
    const auth = await credential('slow');
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${url}/slow/x`, { headers: { authorization: auth } });
      statuses.push(r.status);
      retryAfter = r.headers.get('retry-after') ?? retryAfter;
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
  });

  it.each(['//evil.example/x', '/open/../slow/x', '/open/%2e%2e/x', '/open/ok\\x', '/open/./ok'])(
    'refuses the non-canonical path %s before anything goes upstream',
    async (path) => {
      seen = [];
      const res = await new Promise<number>((resolve) => {
        const req = request(
          { host: '127.0.0.1', port: Number(new URL(url).port), path, method: 'GET' },
          (r) => resolve(r.statusCode ?? 0),
        );
        req.end();
      });
      expect(res).toBe(400);
      expect(seen).toEqual([]);
    },
  );

  it('does not sell unmetered writes of a per-token service, and answers odd bodies with 400', async () => {
    expect((await fetch(`${url}/v1/responses`, { method: 'POST', body: '{}' })).status).toBe(403);
    const auth = await credential('tok');
    for (const body of ['null', '[1]', '{"messages":[null]}', 'not json']) {
      const r = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body,
      });
      expect(r.status).toBe(400);
    }
  });

  it('answers an oversized body with 413, not a 500', async () => {
    const big = await fetch(`${url}/trial/x`, { method: 'POST', body: 'x'.repeat(11 * 1024 * 1024) });
    expect(big.status).toBe(413);
  });
});
