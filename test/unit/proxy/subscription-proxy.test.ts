import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { parseProxyConfig, type Service } from '../../../src/proxy/config.js';
import { createProxy } from '../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let upstream: Server;
let proxy: Server;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let services: Service[];
let gate: L402Gate;
let forwarded = 0;
/** The proxy's clock (unix ms): moved by the tests to end a period. */
let clock = Date.UTC(2026, 0, 1);

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

const PERIOD = 3600;
const start = (): void => {
  proxy = createProxy({ services, gate, ledger: f.ledger, log: silentLog, now: () => clock });
};

beforeAll(async () => {
  upstream = createServer((req, res) => {
    forwarded += 1;
    if (req.url === '/s/fail') {
      res.writeHead(500, { 'content-type': 'application/json' });
      return void res.end('{"error":"down"}');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'coulomb-subscription': 'used=0' });
    res.end('{"ok":true}');
  });
  const up = await listen(upstream);
  f = await paymentsFixture();
  services = parseProxyConfig({
    services: [
      {
        name: 'sub',
        pathPrefix: '/s/',
        upstream: up,
        mode: 'paid',
        creditMsat: '1500',
        lifetimeSeconds: 10 * PERIOD,
        subscription: {
          periodSeconds: PERIOD,
          priceMsat: '50000',
          includedRequests: 3,
          overageMsatPerRequest: '700',
        },
      },
    ],
  }).services;
  gate = new L402Gate(new L402Authority(Buffer.alloc(32, 9)), f.lightning, f.service);
  start();
  url = await listen(proxy);
});
afterAll(() => {
  f.service.stop();
  proxy.closeAllConnections();
  proxy.close();
  upstream.close();
});

/** Buys a subscription: its challenge, paid (the fake node knows every preimage). */
async function subscribe(): Promise<{
  header: string;
  caveats: string[];
  invoiceMsat: bigint;
  tokenId: string;
}> {
  const res = await fetch(`${url}/s/x`);
  expect(res.status).toBe(402);
  const body = (await res.json()) as { subscription: Record<string, unknown> };
  expect(body.subscription).toMatchObject({ priceMsat: '50000', includedRequests: 3, periodSeconds: PERIOD });
  const mac = /macaroon="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')![1]!;
  const decoded = decodeV2(Buffer.from(mac, 'base64'));
  const hash = decoded.identifier.subarray(2, 34).toString('hex');
  const inv = f.lightning.invoices.get(hash)!;
  return {
    header: `L402 ${mac}:${inv.preimage}`,
    caveats: decoded.caveats,
    invoiceMsat: inv.amountMsat,
    tokenId: decoded.identifier.subarray(34).toString('hex'),
  };
}

const get = (header: string): Promise<Response> =>
  fetch(`${url}/s/x`, { headers: { authorization: header } });
const balance = async (id: string): Promise<bigint> => {
  const a = await f.ledger.getAccount(id);
  return a ? a.creditsPosted - a.debitsPosted : 0n;
};

describe('subscription pricing on the proxy', () => {
  it('describes the model in the discovery document and the quote', async () => {
    const d = (await (await fetch(`${url}/.well-known/l402.json`)).json()) as {
      services: Record<string, unknown>[];
    };
    expect(d.services[0]).toMatchObject({
      pricingModels: ['subscription'],
      subscription: {
        periodSeconds: PERIOD,
        priceMsat: '50000',
        includedRequests: 3,
        overageMsatPerRequest: '700',
      },
    });
    expect(d.services[0]!['pricePerRequestMsat']).toBeUndefined();
    const q = (await (await fetch(`${url}/l402/quote?service=sub`)).json()) as Record<string, unknown>;
    expect(q['subscription']).toMatchObject({ priceMsat: '50000', overageMsatPerRequest: '700' });
  });

  it('sells the period at its price, serves the quota free, then bills overage from credit bought on the same credential', async () => {
    const s = await subscribe();
    expect(s.invoiceMsat).toBe(50_000n);
    const startS = Math.floor(clock / 1000);
    expect(s.caveats).toContain(`sub_subscription=${startS}:${startS + PERIOD}:3:700:50000`);
    const revenueBefore = await balance('svc:sub');
    for (let i = 1; i <= 3; i++) {
      const r = await get(s.header);
      expect(r.status).toBe(200);
      // The proxy's header, never the upstream's.
      expect(r.headers.get('coulomb-subscription')).toBe(
        `used=${i}, included=3, period-end=${startS + PERIOD}`,
      );
      expect(r.headers.get('x-l402-credit-remaining-msat')).toBe('0');
    }
    // The period's price went to the service once, at the first use.
    expect((await balance('svc:sub')) - revenueBefore).toBe(50_000n);
    // Quota used, no credit: a 402 with an invoice that credits this same credential.
    const short = await get(s.header);
    expect(short.status).toBe(402);
    expect(short.headers.get('www-authenticate')).toBeNull();
    const body = (await short.json()) as { error: { code: string }; paymentHash: string; amountMsat: string };
    expect(body.error.code).toBe('SUBSCRIPTION_CREDIT_REQUIRED');
    expect(body.amountMsat).toBe('1500');
    // Asked again before paying: the same invoice.
    const again = (await (await get(s.header)).json()) as { paymentHash: string };
    expect(again.paymentHash).toBe(body.paymentHash);
    f.lightning.settle(body.paymentHash);
    const over = await get(s.header);
    expect(over.status).toBe(200);
    expect(over.headers.get('coulomb-subscription')).toBe(
      `used=4, included=3, period-end=${startS + PERIOD}`,
    );
    expect(over.headers.get('x-l402-credit-remaining-msat')).toBe('800');
    await over.text();
    await f.ledger.flush();
    expect(await balance(`l402:${s.tokenId}`)).toBe(800n);
    expect((await balance('svc:sub')) - revenueBefore).toBe(50_700n);
    // 800 left pays one more overage (700), then the credit is short again.
    expect((await get(s.header)).status).toBe(200);
    expect((await get(s.header)).status).toBe(402);
  });

  it('never serves more than the included requests free, however many arrive at once', async () => {
    const s = await subscribe();
    const before = forwarded;
    const answers = await Promise.all(Array.from({ length: 12 }, () => get(s.header)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses.filter((x) => x === 200)).toHaveLength(3);
    expect(statuses.filter((x) => x === 402)).toHaveLength(9);
    await Promise.all(answers.map((r) => r.text()));
    expect(forwarded - before).toBe(3);
  });

  it('asks for a renewal when the period is over, and credits a paid renewal exactly once', async () => {
    const s = await subscribe();
    expect((await get(s.header)).status).toBe(200);
    const startS = Math.floor(clock / 1000);
    clock += PERIOD * 1000;
    const ended = await get(s.header);
    expect(ended.status).toBe(402);
    const body = (await ended.json()) as { error: { code: string }; paymentHash: string; amountMsat: string };
    expect(body).toMatchObject({ error: { code: 'SUBSCRIPTION_RENEWAL_REQUIRED' }, amountMsat: '50000' });
    f.lightning.settle(body.paymentHash);
    const revenueBefore = await balance('svc:sub');
    // Concurrent requests after the payment: one renewal, a fresh quota of 3.
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(s.header)));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 402, 402]);
    const ok = answers.find((r) => r.status === 200)!;
    const newEnd = Math.floor(clock / 1000) + PERIOD;
    expect(newEnd).toBe(startS + 2 * PERIOD);
    expect(ok.headers.get('coulomb-subscription')).toMatch(new RegExp(`included=3, period-end=${newEnd}$`));
    await Promise.all(answers.map((r) => r.text()));
    await f.ledger.flush();
    expect((await balance('svc:sub')) - revenueBefore).toBe(50_000n);
    expect(await balance(`l402:${s.tokenId}`)).toBe(0n);
    clock -= PERIOD * 1000;
  });

  it('answers a credential of the service without a subscription with a challenge for one', async () => {
    const plain = await gate.challenge({ name: 'sub', creditMsat: msat(50_000n), lifetimeSeconds: PERIOD });
    const hash = decodeV2(Buffer.from(plain.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
    const r = await get(`L402 ${plain.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`);
    expect(r.status).toBe(402);
    const body = (await r.json()) as { error: { code: string }; subscription?: unknown };
    expect(body.error.code).toBe('PAYMENT_REQUIRED');
    expect(body.subscription).toMatchObject({ priceMsat: '50000' });
  });

  it('takes back the count of a request the upstream failed', async () => {
    const s = await subscribe();
    expect((await get(s.header)).status).toBe(200);
    const failed = await fetch(`${url}/s/fail`, { headers: { authorization: s.header } });
    expect(failed.status).toBe(500);
    await failed.text();
    const next = await get(s.header);
    expect(next.headers.get('coulomb-subscription')).toMatch(/^used=2, included=3/);
  });

  it('keeps the count across a restart of the proxy', async () => {
    const s = await subscribe();
    expect((await get(s.header)).status).toBe(200);
    expect((await get(s.header)).status).toBe(200);
    // Written before the responses left (no flush here): what a kill would leave on disk.
    const stored = await f.ledger.getRecord(`sub!${s.tokenId}`);
    expect(JSON.parse(stored!)).toMatchObject({ service: 'sub', used: 2, renewals: 0 });
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    start();
    url = await listen(proxy);
    const r = await get(s.header);
    expect(r.headers.get('coulomb-subscription')).toMatch(/^used=3, included=3/);
    expect((await get(s.header)).status).toBe(402);
  });

  it('refuses a credential whose holder appended a different subscription caveat', async () => {
    const s = await subscribe();
    const { createHmac } = await import('node:crypto');
    const { encodeV2 } = await import('../../../src/l402/macaroon.js');
    const [, mac64, preimage] = /^L402 ([^:]+):(.+)$/.exec(s.header)!;
    const mac = decodeV2(Buffer.from(mac64!, 'base64'));
    const caveat = 'sub_subscription=1:9999999999:1000:1:1';
    const forged = encodeV2({
      ...mac,
      caveats: [...mac.caveats, caveat],
      signature: createHmac('sha256', mac.signature).update(caveat).digest(),
    }).toString('base64');
    const r = await get(`L402 ${forged}:${preimage}`);
    expect(r.status).toBe(402);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('PAYMENT_REQUIRED');
  });
});
