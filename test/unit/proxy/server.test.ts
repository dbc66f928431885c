import {
  createServer,
  request,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { credentialAccountId, L402Gate } from '../../../src/l402/gate.js';
import { availableOf } from '../../../src/ledger/types.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { createProxy } from '../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let echo: Server;
let proxy: Server;
let url: string;
let seen: IncomingHttpHeaders[] = [];
/** Upstream requests held without an answer, and whether each was closed (aborted). */
const hanging: { closed: boolean }[] = [];
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let gate: L402Gate;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  echo = createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/v1/chat/completions') return void completion(req, res);
    if (req.url?.startsWith('/open/ok/hang')) {
      const h = { closed: false };
      hanging.push(h);
      res.on('close', () => (h.closed = true));
      return;
    }
    res.writeHead(req.url?.includes('fail') ? 500 : 200, { 'content-type': 'application/json' });
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
        name: 'basic',
        pathPrefix: '/basic/',
        upstream: upstream.replace('http://', 'http://us%40er:p%3Ass@'),
        mode: 'free',
        creditMsat: '0',
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
        name: 'fixed',
        pathPrefix: '/fixed/',
        upstream,
        mode: 'paid',
        pricePerRequestMsat: '10',
        creditMsat: '1000',
      },
      {
        name: 'gone',
        pathPrefix: '/gone/',
        upstream: 'http://127.0.0.1:1',
        mode: 'paid',
        pricePerRequestMsat: '10',
        creditMsat: '1000',
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
  return (await credentialWithAccount(service)).header;
}

async function credentialWithAccount(service: string): Promise<{ header: string; accountId: string }> {
  const c = await gate.challenge({ name: service, creditMsat: 1000n as never, lifetimeSeconds: 60 });
  const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
  return {
    header: `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`,
    accountId: credentialAccountId(c.tokenId),
  };
}

const available = (id: string): bigint => availableOf(f.ledger.accountNow(id)!);

/** An OpenAI-style upstream that reports a usage of 3 prompt and 2 completion tokens. */
async function completion(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw = '';
  for await (const c of req) raw += (c as Buffer).toString();
  const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
  if ((JSON.parse(raw) as { stream?: boolean }).stream) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'hi there' } }] })}\n\n`);
    res.write(`data: ${JSON.stringify({ choices: [], usage })}\n\n`);
    res.end('data: [DONE]\n\n');
    return;
  }
  const body = JSON.stringify({ choices: [{ index: 0, message: { content: 'hi there' } }], usage });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A raw HTTP/1.1 POST: status, headers, body and trailers (fetch does not expose trailers). */
function postRaw(
  path: string,
  body: string,
  authorization: string,
): Promise<{
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  trailers: Record<string, string | undefined>;
}> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(new URL(url).port),
        path,
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, trailers: res.trailers }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
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

  it('authenticates upstream with the credentials of its URL (Basic) and drops a client Expect', async () => {
    seen = [];
    const res = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: Number(new URL(url).port),
          path: '/basic/x',
          method: 'POST',
          headers: { expect: '100-continue', 'content-type': 'application/json' },
        },
        (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.on('continue', () => req.end('{}'));
    });
    expect(res).toBe(200);
    expect(seen[0]?.authorization).toBe(`Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
    expect(seen[0]?.expect).toBeUndefined();
    expect(seen[0]?.['content-length']).toBe('2');
  });

  it('aborts the upstream request when its client leaves before the answer', async () => {
    hanging.length = 0;
    const req = request({ host: '127.0.0.1', port: Number(new URL(url).port), path: '/open/ok/hang' });
    req.on('error', () => undefined);
    req.end();
    await expect.poll(() => hanging.length).toBe(1);
    expect(hanging[0]!.closed).toBe(false);
    req.destroy();
    await expect.poll(() => hanging[0]!.closed).toBe(true);
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
    // The connection whose body was left unread is closed: later requests are not stuck behind it.
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${url}/open/ok`);
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
  });
});

describe('per-request billing', () => {
  it('charges concurrent requests exactly once each, and the credit header counts down', async () => {
    const { header, accountId } = await credentialWithAccount('fixed');
    const revenueBefore = (await f.ledger.getAccount('svc:fixed')) ? available('svc:fixed') : 0n;
    const responses = await Promise.all(
      Array.from({ length: 25 }, () => fetch(`${url}/fixed/x`, { headers: { authorization: header } })),
    );
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(responses.map((r) => r.status)).toEqual(Array(25).fill(200));
    const remaining = responses.map((r) => BigInt(r.headers.get('x-l402-credit-remaining-msat')!));
    expect(remaining.reduce((a, b) => (a < b ? a : b))).toBe(750n);
    await f.ledger.flush();
    expect(available(accountId)).toBe(750n);
    expect(available('svc:fixed') - revenueBefore).toBe(250n);
  });

  it('takes the charge back when the upstream fails or cannot be reached', async () => {
    const { header, accountId } = await credentialWithAccount('fixed');
    const served = await fetch(`${url}/fixed/ok`, { headers: { authorization: header } });
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    const failed = await fetch(`${url}/fixed/fail`, { headers: { authorization: header } });
    expect(failed.status).toBe(500);
    // The figure is what is left once the charge was taken back.
    expect(failed.headers.get('x-l402-credit-remaining-msat')).toBe('990');
    await failed.arrayBuffer();
    await f.ledger.flush();
    expect(available(accountId)).toBe(990n);

    const gone = await credentialWithAccount('gone');
    const r = await fetch(`${url}/gone/x`, { headers: { authorization: gone.header } });
    expect(r.status).toBe(502);
    expect(r.headers.get('x-l402-credit-remaining-msat')).toBe('1000');
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('UPSTREAM_UNAVAILABLE');
    await f.ledger.flush();
    expect(available(gone.accountId)).toBe(1000n);
  });

  it('answers 402 once the credit cannot pay for another request', async () => {
    const { header } = await credentialWithAccount('fixed');
    const statuses: number[] = [];
    for (let i = 0; i < 101; i++)
      statuses.push((await fetch(`${url}/fixed/x`, { headers: { authorization: header } })).status);
    expect(statuses.slice(0, 100)).toEqual(Array(100).fill(200));
    expect(statuses[100]).toBe(402);
  });
});

describe('the credit figure of metered requests', () => {
  const ask = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 100, ...extra });

  it('states the credit after the worst-case reservation up front and after the final charge in a trailer', async () => {
    const { header, accountId } = await credentialWithAccount('tok');
    const r = await postRaw('/v1/chat/completions', ask(), header);
    expect(r.status).toBe(200);
    expect(r.headers['trailer']).toBe('x-l402-credit-remaining-msat');
    const upFront = BigInt(r.headers['x-l402-credit-remaining-msat'] as string);
    // 3 prompt + 2 completion tokens at 1 msat each: 5 of the 1000 are spent, not the reservation.
    expect(r.trailers['x-l402-credit-remaining-msat']).toBe('995');
    expect(upFront).toBeLessThan(995n);
    expect(available(accountId)).toBe(995n);
    expect(JSON.parse(r.body)).toMatchObject({ usage: { completion_tokens: 2 } });
  });

  it('tells a stream the final figure in an SSE comment just before [DONE], and in the trailer', async () => {
    const { header, accountId } = await credentialWithAccount('tok');
    const r = await postRaw('/v1/chat/completions', ask({ stream: true }), header);
    expect(r.status).toBe(200);
    const events = r.body.split('\n\n').filter(Boolean);
    expect(events.slice(-2)).toEqual([': coulomb-credit-remaining-msat=995', 'data: [DONE]']);
    expect(events.filter((e) => e.includes('"usage"'))).toHaveLength(1);
    expect(r.trailers['x-l402-credit-remaining-msat']).toBe('995');
    expect(BigInt(r.headers['x-l402-credit-remaining-msat'] as string)).toBeLessThan(995n);
    expect(available(accountId)).toBe(995n);
  });
});

describe('the challenge limiter', () => {
  it('is configurable for the whole proxy and per service, each service with its own bucket', async () => {
    const upstream = 'http://127.0.0.1:1';
    const service = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      pathPrefix: `/${name}/`,
      upstream,
      mode: 'paid',
      pricePerRequestMsat: '10',
      creditMsat: '1000',
      ...extra,
    });
    const { config, services } = parseProxyConfig({
      challengeRateLimit: { requests: 30, perSeconds: 60 },
      services: [
        service('wide'),
        service('also-wide'),
        service('own', { challengeRateLimit: { requests: 2, perSeconds: 60 } }),
      ],
    });
    const limited = createProxy({
      services,
      gate,
      ledger: f.ledger,
      log: silentLog,
      challengeRateLimit: config.challengeRateLimit!,
    });
    const at = await listen(limited);
    try {
      const statuses = async (path: string, n: number): Promise<number[]> => {
        const out: number[] = [];
        for (let i = 0; i < n; i++) {
          const r = await fetch(`${at}${path}`);
          await r.arrayBuffer();
          out.push(r.status);
        }
        return out;
      };
      // More than the default 20: the proxy-wide limit of 30 is shared by the services without their own.
      expect(await statuses('/wide/x', 25)).toEqual(Array(25).fill(402));
      expect(await statuses('/also-wide/x', 6)).toEqual([402, 402, 402, 402, 402, 429]);
      // A service with a limit of its own has its own bucket, untouched by the others.
      expect(await statuses('/own/x', 3)).toEqual([402, 402, 429]);
      const refused = await fetch(`${at}/own/x`);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('RATE_LIMITED');
    } finally {
      limited.closeAllConnections();
      limited.close();
    }
  });

  it('refuses a limit that is not a positive rate', () => {
    for (const limit of [{ requests: 0, perSeconds: 1 }, { requests: 5, perSeconds: 0 }, { requests: 5 }])
      expect(() =>
        parseProxyConfig({
          challengeRateLimit: limit,
          services: [{ name: 'x', upstream: 'http://127.0.0.1:1', mode: 'free', creditMsat: '0' }],
        }),
      ).toThrow(/challengeRateLimit/);
  });
});
