import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../../src/domain/msat.js';
import { subscriptionCaveats, subscriptionOf } from '../../../../src/l402/subscription-caveats.js';
import { ServiceCatalog } from '../../../../src/proxy/catalog.js';
import { parseProxyConfig, type ServiceConfig } from '../../../../src/proxy/config.js';
import { takeUse, type Period } from '../../../../src/proxy/pricing/subscription.js';
import { MemoryRecords } from '../../../support/memory-records.js';

const service = (over: Partial<ServiceConfig> = {}): unknown => ({
  services: [
    {
      name: 's',
      pathPrefix: '/',
      upstream: 'http://127.0.0.1:9',
      mode: 'paid',
      creditMsat: '1000',
      lifetimeSeconds: 86_400,
      subscription: {
        periodSeconds: 3600,
        priceMsat: '5000',
        includedRequests: 10,
        overageMsatPerRequest: '100',
      },
      ...over,
    },
  ],
});
const sub = { periodSeconds: 3600, priceMsat: '5000', includedRequests: 10, overageMsatPerRequest: '100' };

describe('subscription config', () => {
  it('compiles the terms, the overage being the per-request price', () => {
    const [s] = parseProxyConfig(service()).services;
    expect(s!.subscription).toEqual({
      periodSeconds: 3600,
      priceMsat: 5000n,
      includedRequests: 10,
      overageMsat: 100n,
    });
    expect(s!.pricePerRequest).toBe(100n);
  });

  it.each([
    [{ mode: 'freebie', freeRequests: 1 }, /is mode paid/],
    [{ pricePerRequestMsat: '10' }, /no pricePerRequestMsat or models/],
    [
      { models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '1' } } },
      /no pricePerRequestMsat or models/,
    ],
    [{ schemes: ['l402', 'mpp'] }, /schemes \[l402\] only/],
    [{ lifetimeSeconds: 60 }, /must cover at least one period/],
    [{ creditMsat: '99' }, /at least one overage request/],
    [{ subscription: { ...sub, priceMsat: '0' } }, /priceMsat must be positive/],
    [{ subscription: { ...sub, overageMsatPerRequest: '0' } }, /overageMsatPerRequest must be positive/],
    [{ subscription: { ...sub, periodSeconds: 0 } }, /periodSeconds/],
    [{ subscription: { ...sub, priceMsat: '9999999999999999999' } }, /at most 21M BTC/],
    [{ subscription: { ...sub, priceMsat: '1.5' } }, /priceMsat/],
    [{ subscription: { ...sub, extra: 1 } }, /subscription/],
  ] as const)('refuses %j at load with a clear error', (over, message) => {
    expect(() => parseProxyConfig(service(over as Partial<ServiceConfig>))).toThrow(message);
  });
});

describe('subscription services through the admin API', () => {
  it('adds one, and refuses what cannot be sold with 400 INVALID_SERVICE', async () => {
    const cfg = (service() as { services: ServiceConfig[] }).services[0]!;
    const c = await ServiceCatalog.open(new MemoryRecords(), parseProxyConfig(service()).services);
    await c.add({ ...cfg, name: 't', pathPrefix: '/t/' });
    expect(c.current().find((s) => s.name === 't')?.subscription?.includedRequests).toBe(10);
    await expect(c.add({ ...cfg, name: 'u', pathPrefix: '/u/', lifetimeSeconds: 10 })).rejects.toMatchObject({
      code: 'INVALID_SERVICE',
      status: 400,
    });
  });
});

describe('subscription caveats', () => {
  const terms = {
    periodStart: 1_700_000_000,
    periodEnd: 1_700_003_600,
    includedRequests: 10,
    overageMsat: msat(100n),
    priceMsat: msat(5000n),
  };

  it('round-trips the terms through the minted caveat', () => {
    const caveats = ['services=s:0', ...subscriptionCaveats('s', terms), 's_valid_until=1800000000'];
    expect(subscriptionOf(caveats, 's')).toEqual(terms);
    expect(subscriptionOf(caveats, 'other')).toBeUndefined();
  });

  it('refuses an appended caveat that changes the terms, a second minted one, or a malformed one', () => {
    const [minted] = subscriptionCaveats('s', terms);
    const base = ['services=s:0', minted!, 's_valid_until=1800000000'];
    expect(subscriptionOf([...base, minted!], 's')).toEqual(terms); // repeated exactly: fine
    expect(subscriptionOf([...base, 's_subscription=1:2:999:0:1'], 's')).toBe('conflict');
    expect(
      subscriptionOf(['services=s:0', 's_valid_until=1800000000', 's_subscription=1:2:3:4:5'], 's'),
    ).toBe('conflict');
    expect(subscriptionOf(['s_subscription=1:2:3:4:5', minted!], 's')).toBe('conflict');
    expect(subscriptionOf(['s_subscription=5:2:3:4:5'], 's')).toBe('conflict'); // ends before it starts
    expect(subscriptionOf(['s_subscription=1:2:3:-4:5'], 's')).toBe('conflict');
  });
});

describe('counting a subscription’s requests', () => {
  const terms = { includedRequests: 2, overageMsat: msat(100n) };
  const period = (): Period => ({ periodStart: 1000, periodEnd: 2000, used: 0 });

  it('serves the quota free, then overage with credit, then asks for credit, then for a renewal', () => {
    const p = period();
    const at = 1_500_000;
    expect(takeUse(p, terms, at, 0n)).toEqual({ kind: 'included' });
    expect(takeUse(p, terms, at, 0n)).toEqual({ kind: 'included' });
    expect(takeUse(p, terms, at, 99n)).toEqual({ kind: 'credit-required', priceMsat: 100n });
    expect(p.used).toBe(2);
    expect(takeUse(p, terms, at, 100n)).toEqual({ kind: 'overage', priceMsat: 100n });
    expect(p.used).toBe(3);
    // The period ends at its last second, exclusive.
    expect(takeUse(p, terms, 1_999_999, 100n).kind).toBe('overage');
    expect(takeUse(p, terms, 2_000_000, 100n)).toEqual({ kind: 'renewal-required' });
    expect(p.used).toBe(4);
  });

  it('property: never more than includedRequests free in a period; overage only with its credit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.bigInt({ min: 0n, max: 5000n }),
        // Requests: the time into the period (some after its end) and whether credit is topped up first.
        fc.array(
          fc.record({ at: fc.integer({ min: 0, max: 1200 }), topUp: fc.bigInt({ min: 0n, max: 300n }) }),
          {
            maxLength: 80,
          },
        ),
        (included, overage, initialCredit, requests) => {
          const p: Period = { periodStart: 0, periodEnd: 1000, used: 0 };
          const t = { includedRequests: included, overageMsat: msat(BigInt(overage)) };
          let credit = initialCredit;
          let free = 0;
          let served = 0;
          for (const r of requests) {
            credit += r.topUp;
            const before = p.used;
            const use = takeUse(p, t, r.at * 1000, credit);
            if (use.kind === 'included') free += 1;
            if (use.kind === 'overage') {
              expect(credit).toBeGreaterThanOrEqual(BigInt(overage));
              expect(before).toBeGreaterThanOrEqual(included);
              credit -= use.priceMsat;
            }
            if (use.kind === 'included' || use.kind === 'overage') served += 1;
            else expect(p.used).toBe(before); // a refusal counts nothing
            if (r.at >= 1000) expect(use.kind).toBe('renewal-required');
            expect(credit).toBeGreaterThanOrEqual(0n);
          }
          expect(free).toBeLessThanOrEqual(included);
          expect(p.used).toBe(served);
          // Free first: as many as were asked within the period, up to the quota.
          const inPeriod = requests.filter((r) => r.at < 1000).length;
          expect(free).toBe(Math.min(included, inPeriod));
        },
      ),
    );
  });
});
