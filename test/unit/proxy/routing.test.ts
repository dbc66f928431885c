import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServiceCatalog } from '../../../src/proxy/catalog.js';
import { parseProxyConfig, type ServiceConfig } from '../../../src/proxy/config.js';
import {
  BudgetRouter,
  compileRouting,
  decide,
  routeHeaders,
  tierOf,
  type Routing,
  type RoutingConfig,
} from '../../../src/proxy/routing.js';
import { MemoryRecords } from '../../support/memory-records.js';

/** Every model priced 10/100 msat a token, except 'unpriced' (none) and 'dear' (more). */
const priced = (m: string): { inputPerTokenMsat: bigint; outputPerTokenMsat: bigint } | undefined =>
  m === 'unpriced'
    ? undefined
    : m === 'dear'
      ? { inputPerTokenMsat: 10n, outputPerTokenMsat: 101n }
      : { inputPerTokenMsat: 10n, outputPerTokenMsat: 100n };

const routing: RoutingConfig = {
  tiers: [
    { name: 'high', minBalanceMsat: '1000000' },
    { name: 'normal', minBalanceMsat: '100000', models: { strong: 'medium' } },
    { name: 'low', minBalanceMsat: '10000', models: { strong: 'small', medium: 'small' } },
  ],
};

const svc = (name: string, extra: Partial<ServiceConfig> = {}): ServiceConfig => ({
  name,
  pathPrefix: `/${name}/`,
  upstream: 'http://127.0.0.1:9',
  mode: 'paid',
  models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '2' } },
  creditMsat: '1000',
  lifetimeSeconds: 60,
  ...extra,
});

describe('budget-aware routing: tiers', () => {
  const r = compileRouting('s', routing, priced);

  it('serves the model of the payer balance tier, and refuses below the last tier', () => {
    expect(decide(r, 5_000_000n, 'strong')).toEqual({
      kind: 'served',
      tier: 'high',
      requested: 'strong',
      served: 'strong',
    });
    expect(decide(r, 1_000_000n, 'strong')).toMatchObject({ tier: 'high', served: 'strong' });
    expect(decide(r, 999_999n, 'strong')).toMatchObject({ tier: 'normal', served: 'medium' });
    expect(decide(r, 100_000n, 'other')).toMatchObject({ tier: 'normal', served: 'other' });
    expect(decide(r, 10_000n, 'medium')).toMatchObject({ tier: 'low', served: 'small' });
    expect(decide(r, 9_999n, 'small')).toEqual({ kind: 'refused', lastTier: 'low', minBalanceMsat: 10_000n });
    expect(decide(r, -5n, 'strong')).toMatchObject({ kind: 'refused' });
  });

  it('tells the tier always and the routing only when the model changed', () => {
    expect(routeHeaders(decide(r, 5_000_000n, 'strong'))).toEqual({ 'coulomb-budget-tier': 'high' });
    expect(routeHeaders(decide(r, 50_000n, 'strong'))).toEqual({
      'coulomb-budget-tier': 'low',
      'coulomb-model-routed': 'strong;served=small;tier=low',
    });
    expect(routeHeaders({ kind: 'unrouted' })).toEqual({});
  });

  // Random strictly decreasing thresholds and balances, against a reference: the tier with the
  // highest threshold the balance reaches.
  const tiersArb = fc
    .uniqueArray(fc.bigInt({ min: 0n, max: 10n ** 12n }), { minLength: 1, maxLength: 8 })
    .map((mins) => [...mins].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
  const balanceArb = fc.bigInt({ min: -(10n ** 6n), max: 2n * 10n ** 12n });
  const compiled = (mins: bigint[]): Routing =>
    compileRouting(
      's',
      {
        tiers: mins.map((m, i) => ({
          name: `t${i}`,
          minBalanceMsat: m.toString(),
          models: { strong: `m${i}` },
        })),
      },
      priced,
    );

  it('picks the tier of the highest threshold the balance reaches (property)', () => {
    fc.assert(
      fc.property(tiersArb, balanceArb, (mins, balance) => {
        const r = compiled(mins);
        const reached = mins.filter((m) => balance >= m);
        const expected = reached.length ? `t${mins.indexOf(reached[0]!)}` : undefined;
        expect(tierOf(r, balance)?.name).toBe(expected);
        const d = decide(r, balance, 'strong');
        if (expected === undefined)
          expect(d).toMatchObject({ kind: 'refused', lastTier: `t${mins.length - 1}` });
        else expect(d).toMatchObject({ kind: 'served', tier: expected, served: `m${expected.slice(1)}` });
      }),
    );
  });

  it('never serves a higher tier to a smaller balance (property)', () => {
    fc.assert(
      fc.property(tiersArb, balanceArb, balanceArb, (mins, a, b) => {
        const r = compiled(mins);
        const [lo, hi] = a < b ? [a, b] : [b, a];
        const rank = (x: bigint): number => {
          const t = tierOf(r, x);
          return t ? r.tiers.indexOf(t) : r.tiers.length;
        };
        expect(rank(lo)).toBeGreaterThanOrEqual(rank(hi));
      }),
    );
  });
});

describe('budget-aware routing: config', () => {
  it.each([
    [
      {
        tiers: [
          { name: 'a', minBalanceMsat: '10' },
          { name: 'b', minBalanceMsat: '10' },
        ],
      },
      /decrease strictly/,
    ],
    [
      {
        tiers: [
          { name: 'a', minBalanceMsat: '10' },
          { name: 'b', minBalanceMsat: '20' },
        ],
      },
      /decrease strictly/,
    ],
    [
      {
        tiers: [
          { name: 'a', minBalanceMsat: '10' },
          { name: 'a', minBalanceMsat: '5' },
        ],
      },
      /unique/,
    ],
    [{ tiers: [{ name: 'a', minBalanceMsat: '10', models: { x: 'x' } }] }, /mapped to itself/],
    [{ tiers: [{ name: 'a', minBalanceMsat: '10', models: { x: 'unpriced' } }] }, /no price for unpriced/],
    [
      { tiers: [{ name: 'a', minBalanceMsat: '10', models: { x: 'dear' } }] },
      /dear costs more per token than x/,
    ],
    [{ tiers: [{ name: 'a', minBalanceMsat: '9999999999999999999' }] }, /exceeds/],
  ])('refuses %j', (config, message) => {
    expect(() => compileRouting('s', config, priced)).toThrow(message);
  });

  it('needs a per-token service, and validates through the proxy config', () => {
    expect(() => compileRouting('s', routing, undefined)).toThrow(/needs per-token prices/);
    const ok = parseProxyConfig({ services: [svc('a', { routing })] }).services[0]!;
    expect(ok.routing?.tiers.map((t) => [t.name, t.minBalance])).toEqual([
      ['high', 1_000_000n],
      ['normal', 100_000n],
      ['low', 10_000n],
    ]);
    expect(() =>
      parseProxyConfig({
        services: [
          svc('a', { routing: { tiers: [{ name: 'a', minBalanceMsat: '1', models: { '': 'x' } }] } }),
        ],
      }),
    ).toThrow(/invalid proxy configuration/);
    expect(() => parseProxyConfig({ services: [svc('a', { routing: { tiers: [] } })] })).toThrow(
      /invalid proxy configuration/,
    );
  });

  it('answers INVALID_ROUTING (400) on the admin catalog', async () => {
    const c = await ServiceCatalog.open(new MemoryRecords(), []);
    await expect(
      c.add(
        svc('r', {
          routing: {
            tiers: [
              { name: 'low', minBalanceMsat: '10' },
              { name: 'high', minBalanceMsat: '100' },
            ],
          },
        }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_ROUTING', status: 400 });
    await expect(
      c.add(svc('p', { models: undefined, pricePerRequestMsat: '5', routing })),
    ).rejects.toMatchObject({ code: 'INVALID_ROUTING', status: 400 });
    const added = await c.add(svc('r', { routing }));
    expect(added.service.routing?.tiers).toHaveLength(3);
  });
});

describe('BudgetRouter', () => {
  const r = compileRouting('s', routing, priced);

  it('routes by the payer of the credential invoice, read once, with the balance read each time', async () => {
    const balances = new Map([['agent', 50_000n]]);
    const payerReads: string[] = [];
    const router = new BudgetRouter({
      payerOf: (hash) => {
        payerReads.push(hash);
        return Promise.resolve(hash === 'h-internal' ? 'agent' : undefined);
      },
      availableOf: (id) => Promise.resolve(balances.get(id)),
    });
    const body: Record<string, unknown> = { model: 'strong' };
    const cred = { accountId: 'l402:tok', paymentHash: 'h-internal' };
    expect(await router.route(r, cred, body)).toMatchObject({ kind: 'served', tier: 'low', served: 'small' });
    expect(body['model']).toBe('small');
    balances.set('agent', 2_000_000n);
    const again: Record<string, unknown> = { model: 'strong' };
    expect(await router.route(r, cred, again)).toMatchObject({ tier: 'high', served: 'strong' });
    expect(again['model']).toBe('strong');
    balances.set('agent', 0n);
    expect(await router.route(r, cred, { model: 'small' })).toMatchObject({ kind: 'refused' });
    // Without a model (or with a non-string one) below the last tier: refused too, not unrouted.
    expect(await router.route(r, cred, {})).toMatchObject({ kind: 'refused' });
    expect(await router.route(r, cred, { model: 7 })).toMatchObject({ kind: 'refused' });
    balances.set('agent', 2_000_000n);
    expect(await router.route(r, cred, {})).toEqual({ kind: 'unrouted' });
    expect(payerReads).toEqual(['h-internal']);

    // Paid over Lightning: no payer account, served as asked (and remembered as such).
    const lightning = { accountId: 'l402:other', paymentHash: 'h-lightning' };
    const asked: Record<string, unknown> = { model: 'strong' };
    expect(await router.route(r, lightning, asked)).toEqual({ kind: 'unrouted' });
    expect(await router.route(r, lightning, asked)).toEqual({ kind: 'unrouted' });
    expect(asked['model']).toBe('strong');
    expect(payerReads).toEqual(['h-internal', 'h-lightning']);

    // An MPP session's account names its invoice's hash.
    await router.route(r, { accountId: 'mpp:h-internal' }, { model: 'strong' });
    expect(payerReads).toEqual(['h-internal', 'h-lightning', 'h-internal']);
    // No model in the body: nothing to route.
    expect(await router.route(r, cred, { prompt: 'x' })).toEqual({ kind: 'unrouted' });
  });
});
