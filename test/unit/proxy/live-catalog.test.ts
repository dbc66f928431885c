import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { credentialAccountId, L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { availableOf } from '../../../src/ledger/types.js';
import { msat } from '../../../src/domain/msat.js';
import { ServiceCatalog } from '../../../src/proxy/catalog.js';
import { parseProxyConfig, type ServiceConfig } from '../../../src/proxy/config.js';
import { createProxy } from '../../../src/proxy/server.js';
import { MemoryRecords } from '../../support/memory-records.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let upstream: Server;
let upstreamUrl: string;
let proxy: Server;
let port: number;
let catalog: ServiceCatalog;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let gate: L402Gate;
let received: string[] = [];
/** Called (once) the next time the proxy reads the catalog. */
let read: (() => void) | undefined;
let streamClosed: (() => void) | undefined;
let answered: { service?: string; status: number; paid: boolean }[] = [];

const listen = (s: Server): Promise<number> =>
  new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

const svc = (name: string, extra: Partial<ServiceConfig> = {}): ServiceConfig => ({
  name,
  pathPrefix: `/${name}/`,
  upstream: upstreamUrl,
  mode: 'paid',
  pricePerRequestMsat: '10',
  creditMsat: '1000',
  lifetimeSeconds: 60,
  ...extra,
});

beforeAll(async () => {
  upstream = createServer((req, res) => {
    received.push(req.url ?? '');
    if (req.url?.includes('stream')) {
      // Streams until the client goes away.
      res.on('close', () => streamClosed?.());
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return void res.write('data: 1\n\n');
    }
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  upstreamUrl = `http://127.0.0.1:${await listen(upstream)}`;
  f = await paymentsFixture();
  gate = new L402Gate(new L402Authority(Buffer.alloc(32, 7)), f.lightning, f.service);
});
beforeEach(async () => {
  received = [];
  proxy?.closeAllConnections();
  proxy?.close();
  catalog = await ServiceCatalog.open(
    new MemoryRecords(),
    parseProxyConfig({ services: [svc('a')] }).services,
  );
  // Tells the test when the proxy has read the catalog for a request.
  const live = {
    current: () => {
      const now = catalog.current();
      const waiting = read;
      read = undefined;
      waiting?.();
      return now;
    },
  };
  answered = [];
  proxy = createProxy({
    services: [],
    catalog: live,
    gate,
    ledger: f.ledger,
    log: silentLog,
    hooks: { answered: (e) => answered.push({ ...e }) },
  });
  port = await listen(proxy);
});
afterAll(() => {
  f.service.stop();
  proxy.closeAllConnections();
  proxy.close();
  upstream.close();
});

async function credential(service: string): Promise<{ header: string; accountId: string }> {
  const c = await gate.challenge({ name: service, creditMsat: msat(1000n), lifetimeSeconds: 60 });
  const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
  const header = `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
  // A first request books the credit (at its first presentation) and is charged 10.
  expect(
    (await fetch(`http://127.0.0.1:${port}/${service}/first`, { headers: { authorization: header } })).status,
  ).toBe(200);
  return { header, accountId: credentialAccountId(c.tokenId) };
}

/** A POST whose body arrives in two parts: `between` runs after the first part reached the proxy. */
function stalledPost(
  path: string,
  authorization: string,
  between: () => Promise<void>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { port, path, method: 'POST', headers: { authorization, 'content-length': '10' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    // Once the proxy has matched the service, it waits for the rest of the body.
    read = () => void between().then(() => req.end('67890'), reject);
    req.write('12345');
  });
}

const available = (id: string): bigint => availableOf(f.ledger.accountNow(id)!);

describe('a request under way when its service changes', () => {
  it('is not charged nor forwarded once its service was removed', async () => {
    const c = await credential('a');
    const before = available(c.accountId);
    const r = await stalledPost('/a/x', c.header, () => catalog.remove('a'));
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'NO_SERVICE' } });
    expect(received).toEqual(['/a/first']);
    expect(available(c.accountId)).toBe(before);
  });

  it('is charged the price in force when its body has arrived', async () => {
    const c = await credential('a');
    const before = available(c.accountId);
    const r = await stalledPost('/a/x', c.header, async () => {
      await catalog.replace('a', svc('a', { pricePerRequestMsat: '30' }));
    });
    expect(r.status).toBe(200);
    expect(before - available(c.accountId)).toBe(30n);
  });
});

describe('rate limits of a service changed live', () => {
  it('keep their buckets when other terms change, and start anew when the limit itself does', async () => {
    await catalog.replace('a', svc('a', { rateLimit: { requests: 2, perSeconds: 3600 } }));
    const c = await credential('a'); // the first of 2
    const get = () => fetch(`http://127.0.0.1:${port}/a/x`, { headers: { authorization: c.header } });
    expect((await get()).status).toBe(200);
    expect((await get()).status).toBe(429);
    await catalog.patch('a', { pricePerRequestMsat: '20' });
    expect((await get()).status).toBe(429);
    await catalog.patch('a', { rateLimit: { requests: 3, perSeconds: 3600 } });
    expect((await get()).status).toBe(200);
  });

  it('keep the challenge bucket of a service across a change', async () => {
    await catalog.replace('a', svc('a', { challengeRateLimit: { requests: 1, perSeconds: 3600 } }));
    const ask = () => fetch(`http://127.0.0.1:${port}/a/x`);
    expect((await ask()).status).toBe(402);
    expect((await ask()).status).toBe(429);
    await catalog.patch('a', { creditMsat: '2000' });
    expect((await ask()).status).toBe(429);
  });
});

describe('requests the client cuts off', () => {
  it('are counted as answered, like the others', async () => {
    const c = await credential('a');
    const closed = new Promise<void>((r) => (streamClosed = r));
    await new Promise<void>((resolve, reject) => {
      const req = request({ port, path: '/a/stream', headers: { authorization: c.header } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.on('timeout', reject);
      req.end();
    });
    // The proxy stops the upstream request when its client has gone: by then it has seen the end.
    await closed;
    expect(answered).toEqual([
      { service: 'a', status: 200, paid: true, seconds: expect.any(Number) },
      { service: 'a', status: 200, paid: true, seconds: expect.any(Number) },
    ]);
  });
});
