import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../../src/l402/authority.js';
import { L402Gate } from '../../../../src/l402/gate.js';
import { decodeV2 } from '../../../../src/l402/macaroon.js';
import { parseProxyConfig } from '../../../../src/proxy/config.js';
import { offerFor } from '../../../../src/proxy/pricing/offer.js';
import { compileRules, windowFactorBps, loadFactorBps } from '../../../../src/proxy/pricing/rules.js';
import { createProxy } from '../../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../../support/payments-fixture.js';

const at = (hhmm: string): number => Date.parse(`2026-12-03T${hhmm}:00Z`);
const RULES = {
  windows: [
    { fromUtc: '18:00', toUtc: '22:00', multiplierBps: 15_000 },
    { fromUtc: '21:00', toUtc: '02:00', multiplierBps: 12_000 }, // wraps midnight
  ],
  load: { capacity: 2, steps: [{ fromPercent: 100, factorBps: 30_000 }] },
};

describe('dynamic price rules (fake clock)', () => {
  const r = compileRules('s', RULES);
  it('applies the highest UTC window containing the moment, from inclusive, to exclusive, across midnight', () => {
    expect(
      ['03:00', '17:59', '18:00', '21:30', '21:59', '22:00', '23:59', '00:00', '01:59', '02:00'].map((t) =>
        Number(windowFactorBps(r, at(t))),
      ),
    ).toEqual([10_000, 10_000, 15_000, 15_000, 15_000, 12_000, 12_000, 12_000, 12_000, 10_000]);
  });
  it('steps the load multiplier', () => {
    expect([0, 1, 2, 5].map((n) => Number(loadFactorBps(r, n)))).toEqual([10_000, 10_000, 30_000, 30_000]);
  });
  it('refuses rules it cannot apply', () => {
    expect(() =>
      compileRules('s', { windows: [{ fromUtc: '10:00', toUtc: '10:00', multiplierBps: 20_000 }] }),
    ).toThrow(/fromUtc/);
    expect(() =>
      compileRules('s', {
        load: {
          capacity: 1,
          steps: [
            { fromPercent: 50, factorBps: 20_000 },
            { fromPercent: 60, factorBps: 10_000 },
          ],
        },
      }),
    ).toThrow(/must not fall/);
    const svc = {
      name: 'x',
      pathPrefix: '/x/',
      upstream: 'http://127.0.0.1:9',
      mode: 'paid',
      creditMsat: '10',
    };
    expect(() =>
      parseProxyConfig({
        services: [
          { ...svc, models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '1' } }, priceRules: RULES },
        ],
      }),
    ).toThrow(/per-request/);
    expect(() =>
      parseProxyConfig({
        services: [
          {
            ...svc,
            pricePerRequestMsat: '1',
            priceRules: { windows: [{ fromUtc: '25:00', toUtc: '01:00', multiplierBps: 20_000 }] },
          },
        ],
      }),
    ).toThrow(/fromUtc/);
  });
});

describe('dynamic price rules in a challenge', () => {
  it('sells at least one request at the locked price when the rules lift it above the credit', () => {
    const { services } = parseProxyConfig({
      services: [
        {
          name: 'dear',
          pathPrefix: '/dear/',
          upstream: 'http://127.0.0.1:9/',
          mode: 'paid',
          pricePerRequestMsat: '4000',
          creditMsat: '10000',
          priceRules: { windows: [{ fromUtc: '18:00', toUtc: '22:00', multiplierBps: 30_000 }] },
        },
      ],
    });
    const quiet = offerFor(services[0]!, undefined, 0, at('03:00'));
    const dear = offerFor(services[0]!, undefined, 0, at('19:00'));
    expect(quiet).toMatchObject({ creditMsat: 10_000n, caveats: ['dear_price_msat=4000'] });
    expect(dear).toMatchObject({ creditMsat: 12_000n, caveats: ['dear_price_msat=12000'] });
  });
});

describe('dynamic price rules on the proxy', () => {
  let upstream: Server;
  let proxy: Server;
  let url: string;
  let clock = at('03:00');
  let f: Awaited<ReturnType<typeof paymentsFixture>>;
  beforeAll(async () => {
    upstream = createServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    f = await paymentsFixture();
    const { services } = parseProxyConfig({
      services: [
        {
          name: 'd',
          pathPrefix: '/d/',
          upstream: `http://127.0.0.1:${(upstream.address() as { port: number }).port}`,
          mode: 'paid',
          pricePerRequestMsat: '333',
          creditMsat: '1000',
          priceRules: RULES,
          priority: { classes: { fast: { multiplierBps: 20_000 } }, capacity: 10 },
        },
      ],
    });
    const gate = new L402Gate(new L402Authority(Buffer.alloc(32, 9)), f.lightning, f.service);
    proxy = createProxy({ services, gate, ledger: f.ledger, log: silentLog, now: () => clock });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  });
  afterAll(() => {
    f.service.stop();
    proxy.closeAllConnections();
    proxy.close();
    upstream.close();
  });

  const quote = async (extra = ''): Promise<Record<string, unknown>> =>
    (await (await fetch(`${url}/l402/quote?service=d${extra}`)).json()) as Record<string, unknown>;

  async function buy(
    headers: Record<string, string> = {},
  ): Promise<{ header: string; body: Record<string, unknown>; invoiceMsat: bigint }> {
    const res = await fetch(`${url}/d/x`, { headers });
    expect(res.status).toBe(402);
    const mac = /macaroon="([^"]+)"/.exec(res.headers.get('www-authenticate') ?? '')![1]!;
    const hash = decodeV2(Buffer.from(mac, 'base64')).identifier.subarray(2, 34).toString('hex');
    const inv = f.lightning.invoices.get(hash)!;
    return {
      header: `L402 ${mac}:${inv.preimage}`,
      body: (await res.json()) as Record<string, unknown>,
      invoiceMsat: inv.amountMsat,
    };
  }

  it('quotes by the clock, locks the price of the challenge, and keeps it when the clock moves', async () => {
    clock = at('03:00');
    expect(await quote()).toMatchObject({
      perRequestMsat: '333',
      price: { windowBps: 10_000, loadBps: 10_000 },
    });
    clock = at('19:00');
    // 333 × 1.5 = 499.5 → 500
    expect(await quote()).toMatchObject({
      perRequestMsat: '500',
      price: { priceMsat: '500', windowBps: 15_000 },
    });
    const peak = await buy();
    expect(peak.invoiceMsat).toBe(1000n); // an ordinary credential still sells the service's credit
    expect(peak.body).toMatchObject({ price: { priceMsat: '500' } });
    clock = at('03:00');
    const off = await buy();
    const r1 = await fetch(`${url}/d/x`, { headers: { authorization: peak.header } });
    expect(r1.headers.get('x-l402-credit-remaining-msat')).toBe('500');
    const r2 = await fetch(`${url}/d/x`, { headers: { authorization: off.header } });
    expect(r2.headers.get('x-l402-credit-remaining-msat')).toBe('667');
    clock = at('19:00');
    const r3 = await fetch(`${url}/d/x`, { headers: { authorization: off.header } });
    expect(r3.headers.get('x-l402-credit-remaining-msat')).toBe('334'); // still 333, as locked
  });

  it('multiplies a priority class by the rules of the moment, in one rounding', async () => {
    clock = at('23:00');
    // 333 × 2 × 1.2 = 799.2 → 800
    expect(await quote('&priority=fast')).toMatchObject({
      priority: { priceMsat: '800', windowBps: 12_000, loadBps: 10_000 },
    });
    const c = await buy({ 'coulomb-priority': 'fast' });
    expect(c.invoiceMsat).toBe(800n);
  });

  it('describes the rules in the discovery document', async () => {
    const doc = (await (await fetch(`${url}/.well-known/l402.json`)).json()) as {
      services: Record<string, unknown>[];
    };
    expect(doc.services[0]!['priceRules']).toMatchObject({
      windows: [
        { fromUtc: '18:00', toUtc: '22:00', multiplierBps: 15_000 },
        { fromUtc: '21:00', toUtc: '02:00', multiplierBps: 12_000 },
      ],
      load: { capacity: 2, steps: [{ fromPercent: 100, factorBps: 30_000 }] },
    });
  });
});
