import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Gate } from '../../../src/l402/gate.js';
import { decodeV2, encodeV2 } from '../../../src/l402/macaroon.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { createProxy } from '../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let upstream: Server;
let proxy: Server;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
const seen: IncomingHttpHeaders[] = [];
/** Requests to /p/hold wait here until released. */
const held: ServerResponse[] = [];

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  upstream = createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/p/hold') {
      // A stream under way: headers and a first event now, the end when released.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {}\n\n');
      return void held.push(res);
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const up = await listen(upstream);
  f = await paymentsFixture();
  const { services } = parseProxyConfig({
    services: [
      {
        name: 'p',
        pathPrefix: '/p/',
        upstream: up,
        mode: 'paid',
        pricePerRequestMsat: '1001',
        creditMsat: '10000',
        priority: {
          classes: {
            low: { multiplierBps: 10_000 },
            high: { multiplierBps: 25_000 },
            urgent: { multiplierBps: 40_000 },
          },
          capacity: 4,
          demandSteps: [{ fromPercent: 50, factorBps: 12_500 }],
          requestsPerCredential: 2,
        },
      },
      {
        name: 'plain',
        pathPrefix: '/plain/',
        upstream: up,
        mode: 'paid',
        pricePerRequestMsat: '10',
        creditMsat: '100',
      },
    ],
  });
  const gate = new L402Gate(new L402Authority(Buffer.alloc(32, 7)), f.lightning, f.service);
  proxy = createProxy({ services, gate, ledger: f.ledger, log: silentLog });
  url = await listen(proxy);
});
afterAll(() => {
  f.service.stop();
  for (const r of held) r.destroy();
  proxy.closeAllConnections();
  proxy.close();
  upstream.close();
});

interface Challenge {
  status: number;
  code: string;
  invoiceMsat: bigint;
  priority?: { class: string; priceMsat: string; demandFactorBps: number; multiplierBps: number };
  macaroon: string;
  /** The credential once the invoice is paid. */
  header: string;
}

/** A request that gets a 402: its code, the invoice's amount and the credential paying it buys. */
async function challenged(path: string, headers: Record<string, string> = {}): Promise<Challenge> {
  const res = await fetch(`${url}${path}`, { headers });
  const body = (await res.json()) as { error: { code: string }; priority?: Challenge['priority'] };
  const mac = /macaroon="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')![1]!;
  const hash = decodeV2(Buffer.from(mac, 'base64')).identifier.subarray(2, 34).toString('hex');
  const inv = f.lightning.invoices.get(hash)!;
  return {
    status: res.status,
    code: body.error.code,
    invoiceMsat: inv.amountMsat,
    ...(body.priority ? { priority: body.priority } : {}),
    macaroon: mac,
    header: `L402 ${mac}:${inv.preimage}`,
  };
}

const quote = async (cls: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const r = await fetch(`${url}/l402/quote?service=p&priority=${cls}`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('priority pricing on the proxy', () => {
  it('quotes a class, and its challenge sells exactly that price (× requests per credential), locked in the macaroon', async () => {
    const q = await quote('high');
    expect(q.status).toBe(200);
    // 1001 × 2.5 × 1 = 2502.5 → 2503 msat a request, two requests a credential
    expect(q.body['priority']).toMatchObject({
      class: 'high',
      priceMsat: '2503',
      creditMsat: '5006',
      demandFactorBps: 10_000,
    });
    const c = await challenged('/p/x', { 'coulomb-priority': 'high' });
    expect(c.status).toBe(402);
    expect(c.invoiceMsat).toBe(5006n);
    expect(c.priority).toMatchObject({ class: 'high', priceMsat: '2503' });
    expect(decodeV2(Buffer.from(c.macaroon, 'base64')).caveats).toContain('p_price_msat=2503');
  });

  it('serves the credential at its class for its locked price, lower classes too, never a higher one', async () => {
    const c = await challenged('/p/x', { 'coulomb-priority': 'high' });
    seen.length = 0;
    const first = await fetch(`${url}/p/x`, {
      headers: { authorization: c.header, 'coulomb-priority': 'high' },
    });
    expect(first.status).toBe(200);
    expect(first.headers.get('coulomb-priority')).toBe('high');
    expect(first.headers.get('x-l402-credit-remaining-msat')).toBe('2503');
    // A lower class asked: served at the class bought (and so told upstream), same price.
    const lower = await fetch(`${url}/p/x`, {
      headers: { authorization: c.header, 'coulomb-priority': 'low' },
    });
    expect(lower.status).toBe(200);
    expect(lower.headers.get('x-l402-credit-remaining-msat')).toBe('0');
    expect(seen.map((h) => h['coulomb-priority'])).toEqual(['high', 'high']);
    const higher = await challenged('/p/x', { authorization: c.header, 'coulomb-priority': 'urgent' });
    expect(higher).toMatchObject({ status: 402, code: 'PRIORITY_NOT_COVERED', invoiceMsat: 8008n });
    // Used up: the new challenge is for the credential's class.
    const spent = await challenged('/p/x', { authorization: c.header });
    expect(spent).toMatchObject({ status: 402, code: 'PAYMENT_REQUIRED', invoiceMsat: 5006n });
  });

  it('prices the demand of the moment: requests in flight move the quote and the challenge by whole steps', async () => {
    const c = await challenged('/p/x', { 'coulomb-priority': 'urgent' }); // bought at a quiet moment
    const hold = [0, 1].map(() => fetch(`${url}/p/hold`, { headers: { authorization: c.header } }));
    expect((await Promise.all(hold)).map((r) => r.status)).toEqual([200, 200]);
    expect(held.length).toBe(2);
    // 2 of 4 in flight = 50 %: × 1.25. 1001 × 4 × 1.25 = 5005
    expect((await quote('urgent')).body['priority']).toMatchObject({
      inFlight: 2,
      demandFactorBps: 12_500,
      priceMsat: '5005',
    });
    const busy = await challenged('/p/x', { 'coulomb-priority': 'urgent' });
    expect(busy.invoiceMsat).toBe(5005n * 2n);
    for (const r of held.splice(0)) r.end('data: [DONE]\n\n');
    const done = await Promise.all(hold);
    await Promise.all(done.map((r) => r.text()));
    expect(done[1]!.headers.get('x-l402-credit-remaining-msat')).toBe('0'); // 2 × 4004, its locked price
    expect((await quote('urgent')).body['priority']).toMatchObject({ inFlight: 0, priceMsat: '4004' });
    // The credential bought under load keeps its price once the load is gone.
    const r = await fetch(`${url}/p/x`, { headers: { authorization: busy.header } });
    expect(r.headers.get('x-l402-credit-remaining-msat')).toBe('5005');
  });

  it('refuses a credential whose holder appended a caveat changing the locked price or class', async () => {
    const c = await challenged('/p/x', { 'coulomb-priority': 'urgent' });
    const mac = decodeV2(Buffer.from(c.macaroon, 'base64'));
    for (const caveat of ['p_price_msat=1', 'p_priority=low']) {
      const forged = encodeV2({
        ...mac,
        caveats: [...mac.caveats, caveat],
        signature: createHmac('sha256', mac.signature).update(caveat).digest(),
      }).toString('base64');
      const preimage = c.header.split(':')[1]!;
      const r = await challenged('/p/x', { authorization: `L402 ${forged}:${preimage}` });
      expect(r.status).toBe(402);
    }
  });

  it('refuses a credential minted without a lock whose holder appended a price or a class', async () => {
    for (const [path, service] of [
      ['/p/x', 'p'],
      ['/plain/x', 'plain'],
    ] as const) {
      const c = await challenged(path);
      const mac = decodeV2(Buffer.from(c.macaroon, 'base64'));
      const preimage = c.header.split(':')[1]!;
      for (const appended of [
        [`${service}_price_msat=0`],
        [`${service}_priority=urgent`, `${service}_price_msat=1`],
      ]) {
        let signature = mac.signature;
        for (const caveat of appended) signature = createHmac('sha256', signature).update(caveat).digest();
        const forged = encodeV2({ ...mac, caveats: [...mac.caveats, ...appended], signature }).toString(
          'base64',
        );
        const r = await challenged(path, { authorization: `L402 ${forged}:${preimage}` });
        expect(r.status).toBe(402);
      }
      // The credential as minted is still served.
      expect((await fetch(`${url}${path}`, { headers: { authorization: c.header } })).status).toBe(200);
    }
  });

  it('asks a plain credential for a priority credential; refuses unknown classes with 400', async () => {
    const plain = await challenged('/p/x');
    expect(plain.invoiceMsat).toBe(10_000n);
    const r = await challenged('/p/x', { authorization: plain.header, 'coulomb-priority': 'low' });
    expect(r).toMatchObject({ status: 402, code: 'PRIORITY_NOT_COVERED', invoiceMsat: 2002n });
    const bad = await fetch(`${url}/p/x`, { headers: { 'coulomb-priority': 'gold' } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('UNKNOWN_PRIORITY_CLASS');
    const none = await fetch(`${url}/plain/x`, { headers: { 'coulomb-priority': 'low' } });
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('PRIORITY_NOT_OFFERED');
    expect((await quote('gold')).body).toMatchObject({ error: { code: 'UNKNOWN_PRIORITY_CLASS' } });
    const q = await fetch(`${url}/l402/quote?service=plain&priority=low`);
    expect([q.status, ((await q.json()) as { error: { code: string } }).error.code]).toEqual([
      400,
      'PRIORITY_NOT_OFFERED',
    ]);
  });

  it('describes the classes in the discovery document', async () => {
    const doc = (await (await fetch(`${url}/.well-known/l402.json`)).json()) as {
      services: { name: string; priority?: Record<string, unknown>; [k: string]: unknown }[];
    };
    expect(doc.services.find((s) => s.name === 'p')!.priority).toMatchObject({
      header: 'Coulomb-Priority',
      baseMsat: '1001',
      classes: { low: { multiplierBps: 10_000, rank: 0 }, urgent: { multiplierBps: 40_000, rank: 2 } },
      capacity: 4,
      demandSteps: [{ fromPercent: 50, factorBps: 12_500 }],
      requestsPerCredential: 2,
    });
    expect(doc.services.find((s) => s.name === 'plain')!.priority).toBeUndefined();
    expect(doc.services.map((s) => [s.name, s['pricingModels']])).toEqual([
      ['plain', ['per-request']],
      ['p', ['per-request', 'priority']],
    ]);
  });
});
