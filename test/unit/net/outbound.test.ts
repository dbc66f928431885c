import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { guardedFetch } from '../../../src/net/guarded-fetch.js';
import { OutboundGuard, type Resolver } from '../../../src/net/outbound.js';

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  servers = [];
});

/** A real HTTP server on loopback that records every request it gets. */
async function localServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  },
): Promise<{ port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.headers.host} ${req.url}`);
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, hits };
}

const resolver =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const found = table[host];
    if (!found) throw new Error(`ENOTFOUND ${host}`);
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('OutboundGuard.checkUrl (no DNS)', () => {
  const guard = new OutboundGuard();
  it.each([
    'ftp://example.com/verify',
    'file:///etc/passwd',
    'http://user:secret@example.com/',
    'http://127.0.0.1:8402/v1/accounts',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.0.0.1/',
    'http://0.0.0.0:8403/',
    'http://localhost:8402/',
    'http://api.localhost/',
    'not a url',
  ])('refuses %s with OUTBOUND_URL_FORBIDDEN (400)', (url) => {
    expect(() => guard.checkUrl(url)).toThrow(
      expect.objectContaining({ code: 'OUTBOUND_URL_FORBIDDEN', status: 400 }) as Error,
    );
  });

  it('accepts public http(s) URLs, and allowed hosts and blocks', () => {
    expect(guard.checkUrl('https://verifier.example.com/check').hostname).toBe('verifier.example.com');
    expect(guard.checkUrl('http://93.184.216.34:8080/').port).toBe('8080');
    const allowing = new OutboundGuard({ allow: ['10.1.0.0/16', 'LocalHost', '::1'] });
    expect(allowing.checkUrl('http://10.1.2.3/').hostname).toBe('10.1.2.3');
    expect(allowing.checkUrl('http://localhost:9/').hostname).toBe('localhost');
    expect(allowing.checkUrl('http://[::1]:9/').hostname).toBe('[::1]');
    expect(() => allowing.checkUrl('http://10.2.0.1/')).toThrow(
      expect.objectContaining({ code: 'OUTBOUND_URL_FORBIDDEN' }) as Error,
    );
  });

  it('refuses an allowlist entry that is neither a host nor a block', () => {
    expect(() => new OutboundGuard({ allow: ['http://x/'] })).toThrow(/outbound.allow/);
    expect(() => new OutboundGuard({ allow: ['10.0.0.0/40'] })).toThrow(/outbound.allow/);
  });
});

describe('OutboundGuard.postJson (a real server on loopback)', () => {
  it('refuses a name that resolves to loopback: nothing is sent', async () => {
    const { port, hits } = await localServer();
    const guard = new OutboundGuard({ resolve: resolver({ 'verifier.test': ['127.0.0.1'] }) });
    await expect(
      guard.postJson(`http://verifier.test:${port}/v`, {}, { timeoutMs: 2000 }),
    ).rejects.toMatchObject({
      code: 'OUTBOUND_URL_FORBIDDEN',
    });
    expect(hits).toEqual([]);
  });

  it('refuses when any of the resolved addresses is not public', async () => {
    const { port, hits } = await localServer();
    const guard = new OutboundGuard({
      resolve: resolver({ 'verifier.test': ['93.184.216.34', '127.0.0.1'] }),
    });
    await expect(
      guard.postJson(`http://verifier.test:${port}/v`, {}, { timeoutMs: 2000 }),
    ).rejects.toMatchObject({
      code: 'OUTBOUND_URL_FORBIDDEN',
    });
    expect(hits).toEqual([]);
  });

  it('with the address allowed, connects to the checked address (pinned, no second lookup)', async () => {
    const { port, hits } = await localServer();
    let lookups = 0;
    const guard = new OutboundGuard({
      allow: ['127.0.0.0/8'],
      resolve: async (host) => {
        lookups += 1;
        // A rebinding resolver: a different answer on every lookup after the check.
        return [{ address: lookups === 1 ? '127.0.0.1' : '127.0.0.2', family: 4 as const }].filter(
          () => host === 'verifier.test',
        );
      },
    });
    const answer = await guard.postJson(`http://verifier.test:${port}/v?x=1`, { a: 1 }, { timeoutMs: 2000 });
    expect(answer).toEqual({ status: 200, body: { ok: true } });
    expect(lookups).toBe(1);
    expect(hits).toEqual([`POST verifier.test:${port} /v?x=1`]);
  });

  it('with the host allowed by name, calls it whatever it resolves to', async () => {
    const { port, hits } = await localServer();
    const guard = new OutboundGuard({
      allow: ['verifier.internal'],
      resolve: resolver({ 'verifier.internal': ['127.0.0.1'] }),
    });
    expect((await guard.postJson(`http://verifier.internal:${port}/`, {}, { timeoutMs: 2000 })).status).toBe(
      200,
    );
    expect(hits).toHaveLength(1);
  });

  it('does not follow redirects', async () => {
    const target = await localServer();
    const redirecting = await localServer((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${target.port}/internal` });
      res.end();
    });
    const guard = new OutboundGuard({ allow: ['127.0.0.1'] });
    await expect(
      guard.postJson(`http://127.0.0.1:${redirecting.port}/`, {}, { timeoutMs: 2000 }),
    ).rejects.toMatchObject({
      code: 'OUTBOUND_FAILED',
      message: expect.stringMatching(/redirect/) as string,
    });
    expect(redirecting.hits).toHaveLength(1);
    expect(target.hits).toEqual([]);
  });

  it('bounds the answer size and the time', async () => {
    const big = await localServer((_req, res) => res.end('x'.repeat(10_000)));
    const hang = await localServer(() => undefined);
    const guard = new OutboundGuard({ allow: ['127.0.0.1'] });
    await expect(
      guard.postJson(`http://127.0.0.1:${big.port}/`, {}, { timeoutMs: 2000, maxBytes: 1000 }),
    ).rejects.toMatchObject({
      code: 'OUTBOUND_FAILED',
    });
    await expect(
      guard.postJson(`http://127.0.0.1:${hang.port}/`, {}, { timeoutMs: 100 }),
    ).rejects.toMatchObject({
      code: 'OUTBOUND_FAILED',
    });
  });
});

describe('guardedFetch (the same pinned request, a real server on loopback)', () => {
  it('refuses a URL the guard refuses before connecting', async () => {
    const target = await localServer();
    const f = guardedFetch(new OutboundGuard());
    await expect(f(`http://127.0.0.1:${target.port}/`)).rejects.toMatchObject({
      code: 'OUTBOUND_URL_FORBIDDEN',
    });
    expect(target.hits).toEqual([]);
  });

  it('sends method, headers and body to the checked address and answers status, headers and body', async () => {
    let seen = '';
    const target = await localServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen = `${req.headers['x-probe']} ${req.headers['content-length']} ${Buffer.concat(chunks).toString()}`;
        res.writeHead(201, { 'x-answer': 'yes' });
        res.end('made');
      });
    });
    const guard = new OutboundGuard({
      allow: ['paid.test'],
      resolve: resolver({ 'paid.test': ['127.0.0.1'] }),
    });
    const answer = await guardedFetch(guard)(`http://paid.test:${target.port}/buy?n=1`, {
      method: 'POST',
      headers: { 'x-probe': 'p' },
      body: 'hello',
    });
    expect(answer.status).toBe(201);
    expect(answer.headers.get('x-answer')).toBe('yes');
    expect(await answer.text()).toBe('made');
    expect(seen).toBe('p 5 hello');
    expect(target.hits).toEqual([`POST paid.test:${target.port} /buy?n=1`]);
  });

  it('returns a redirect without following it, and bounds the answer size', async () => {
    const target = await localServer();
    const redirecting = await localServer((_req, res) => {
      res.writeHead(307, { location: `http://127.0.0.1:${target.port}/internal` });
      res.end();
    });
    const big = await localServer((_req, res) => res.end('x'.repeat(10_000)));
    const f = guardedFetch(new OutboundGuard({ allow: ['127.0.0.1'] }), { maxBytes: 1000 });
    const answer = await f(`http://127.0.0.1:${redirecting.port}/`);
    expect(answer.status).toBe(307);
    expect(answer.headers.get('location')).toBe(`http://127.0.0.1:${target.port}/internal`);
    expect(target.hits).toEqual([]);
    await expect(f(`http://127.0.0.1:${big.port}/`)).rejects.toMatchObject({ code: 'OUTBOUND_FAILED' });
  });
});
