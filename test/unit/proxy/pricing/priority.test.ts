import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../../src/domain/msat.js';
import { lockCaveats, lockedPriorityOf } from '../../../../src/l402/priority-caveats.js';
import { ServiceCatalog } from '../../../../src/proxy/catalog.js';
import { parseProxyConfig, type ServiceConfig } from '../../../../src/proxy/config.js';
import {
  compilePriority,
  decidePriority,
  demandFactorBps,
  multiplied,
  quotePriority,
  type PriorityConfig,
} from '../../../../src/proxy/pricing/priority.js';
import { MemoryRecords } from '../../../support/memory-records.js';

const CFG: PriorityConfig = {
  classes: {
    low: { multiplierBps: 10_000 },
    high: { multiplierBps: 25_000 },
    urgent: { multiplierBps: 40_000 },
  },
  capacity: 4,
  demandSteps: [
    { fromPercent: 50, factorBps: 12_500 },
    { fromPercent: 100, factorBps: 20_000 },
  ],
};
const terms = (base: bigint, cfg: PriorityConfig = CFG) =>
  compilePriority('s', cfg, msat(base), false, true, false);

/** A config of random classes (distinct multipliers) and random ascending steps. */
const arbConfig = fc
  .record({
    multipliers: fc.uniqueArray(fc.integer({ min: 10_000, max: 10_000_000 }), { minLength: 1, maxLength: 6 }),
    capacity: fc.integer({ min: 1, max: 1000 }),
    steps: fc.uniqueArray(fc.integer({ min: 0, max: 1000 }), { maxLength: 6 }),
    factors: fc.array(fc.integer({ min: 10_000, max: 100_000 }), { minLength: 6, maxLength: 6 }),
  })
  .map(({ multipliers, capacity, steps, factors }): PriorityConfig => {
    const from = [...steps].sort((a, b) => a - b);
    const f = [...factors].sort((a, b) => a - b);
    return {
      classes: Object.fromEntries(multipliers.map((m, i) => [`c${i}`, { multiplierBps: m }])),
      capacity,
      demandSteps: from.map((p, i) => ({ fromPercent: p, factorBps: f[i]! })),
    };
  });

describe('priority price maths', () => {
  it('is base × multiplier × demand / 10,000², rounded up to the msat, exactly', () => {
    const t = terms(1001n);
    // 1001 × 2.5 × 1.25 = 3128.125 → 3129
    expect(quotePriority(t, 'high', 2)!.priceMsat).toBe(3129n);
    expect(quotePriority(t, 'high', 1)!.priceMsat).toBe(2503n); // 2502.5 → 2503, no demand step
    expect(quotePriority(t, 'low', 0)!.priceMsat).toBe(1001n);
    expect(quotePriority(t, 'urgent', 4)!.priceMsat).toBe(8008n);
    expect(quotePriority(t, 'nope', 0)).toBeUndefined();
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.array(fc.bigInt({ min: 10_000n, max: 10_000_000n }), { maxLength: 4 }),
        (base, factors) => {
          const p = multiplied(base, factors);
          const exact = factors.reduce((a, f) => a * f, base);
          const den = 10_000n ** BigInt(factors.length);
          // the least integer p with p × den ≥ base × Π factors
          expect(p * den >= exact).toBe(true);
          expect((p - 1n) * den < exact).toBe(true);
          expect(p >= base).toBe(true);
        },
      ),
    );
  });

  it('never quotes below the base, and is monotone in class and in load', () => {
    fc.assert(
      fc.property(
        arbConfig,
        fc.bigInt({ min: 0n, max: 10n ** 12n }),
        fc.nat(3000),
        fc.nat(3000),
        (cfg, base, a, b) => {
          const t = terms(base, cfg);
          const byRank = [...t.classes.values()].sort((x, y) => x.rank - y.rank);
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          let previous = -1n;
          for (const c of byRank) {
            const q = quotePriority(t, c.name, lo)!;
            expect(q.priceMsat >= base).toBe(true);
            expect(q.priceMsat >= previous).toBe(true); // higher class, never cheaper
            previous = q.priceMsat;
            expect(quotePriority(t, c.name, hi)!.priceMsat >= q.priceMsat).toBe(true); // more load, never cheaper
            expect(q.creditMsat).toBe(q.priceMsat);
          }
        },
      ),
    );
  });

  it('quantizes the load into the configured steps', () => {
    const t = terms(100n);
    expect([0, 1, 2, 3, 4, 9].map((n) => demandFactorBps(t, n))).toEqual([
      10_000n,
      10_000n,
      12_500n,
      12_500n,
      20_000n,
      20_000n,
    ]);
  });

  it('refuses configs it cannot price', () => {
    const base = msat(10n);
    expect(() => compilePriority('s', CFG, undefined, false, true, false)).toThrow(/pricePerRequestMsat/);
    expect(() => compilePriority('s', CFG, base, true, true, false)).toThrow(/no models/);
    expect(() => compilePriority('s', CFG, base, false, false, false)).toThrow(/l402/);
    expect(() => compilePriority('s', CFG, base, false, true, true)).toThrow(/free/);
    const same = { ...CFG, classes: { a: { multiplierBps: 20_000 }, b: { multiplierBps: 20_000 } } };
    expect(() => compilePriority('s', same, base, false, true, false)).toThrow(/same multiplier/);
    const down = {
      ...CFG,
      demandSteps: [
        { fromPercent: 10, factorBps: 20_000 },
        { fromPercent: 20, factorBps: 15_000 },
      ],
    };
    expect(() => compilePriority('s', down, base, false, true, false)).toThrow(/must not fall/);
    const unsorted = {
      ...CFG,
      demandSteps: [
        { fromPercent: 20, factorBps: 15_000 },
        { fromPercent: 20, factorBps: 15_000 },
      ],
    };
    expect(() => compilePriority('s', unsorted, base, false, true, false)).toThrow(/ascending/);
    expect(() => parseProxyConfig({ services: [svc('p', { priority: { ...CFG, capacity: 0 } })] })).toThrow(
      /capacity/,
    );
  });

  it('is accepted (and refused) by the live catalog, as the admin API applies it', async () => {
    const c = await ServiceCatalog.open(
      new MemoryRecords(),
      parseProxyConfig({ services: [svc('a')] }).services,
    );
    await c.add(svc('p', { priority: CFG }));
    expect(
      c
        .current()
        .find((s) => s.name === 'p')!
        .priority!.classes.get('urgent')!.rank,
    ).toBe(2);
    await expect(
      c.add(svc('q', { priority: { ...CFG, classes: { x: { multiplierBps: 9_999 } } } })),
    ).rejects.toMatchObject({ code: 'INVALID_SERVICE', status: 400 });
    await expect(
      c.add(
        svc('r', {
          pricePerRequestMsat: undefined,
          models: { '*': { inputPerTokenMsat: '1', outputPerTokenMsat: '1' } },
          priority: CFG,
        }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_SERVICE', status: 400 });
  });
});

describe('which class a request is served at', () => {
  const t = terms(10n);
  const locked = (cls: string) => ({ class: cls, priceMsat: msat(25n) });
  it('serves a credential at its own class, and at any lower class asked for', () => {
    expect(decidePriority(t, undefined, locked('high'))).toEqual({ kind: 'serve', locked: locked('high') });
    expect(decidePriority(t, 'high', locked('high'))).toEqual({ kind: 'serve', locked: locked('high') });
    expect(decidePriority(t, 'low', locked('high'))).toEqual({ kind: 'serve', locked: locked('high') });
  });
  it('asks for a credential of the class when a higher one is asked, or the credential has none', () => {
    expect(decidePriority(t, 'urgent', locked('high'))).toMatchObject({ kind: 'challenge', class: 'urgent' });
    expect(decidePriority(t, 'low', undefined)).toMatchObject({ kind: 'challenge', class: 'low' });
    expect(decidePriority(t, undefined, undefined)).toEqual({ kind: 'none' });
  });
  it('refuses unknown classes and classes on a service without any', () => {
    expect(decidePriority(t, 'gold', undefined)).toMatchObject({
      kind: 'invalid',
      code: 'UNKNOWN_PRIORITY_CLASS',
    });
    expect(decidePriority(undefined, 'low', undefined)).toMatchObject({
      kind: 'invalid',
      code: 'PRIORITY_NOT_OFFERED',
    });
  });
  it('reads the locked caveats, and refuses a holder-added caveat that changes them', () => {
    const minted = ['services=s:0', ...lockCaveats('s', 'high', msat(25n)), 's_valid_until=9'];
    expect(lockedPriorityOf(minted, 's')).toEqual(locked('high'));
    expect(lockedPriorityOf(minted, 'other')).toBeUndefined();
    expect(lockedPriorityOf([...minted, 's_price_msat=1'], 's')).toBe('conflict');
    expect(lockedPriorityOf([...minted, 's_priority=urgent'], 's')).toBe('conflict');
    expect(lockedPriorityOf([...minted, 's_priority=high'], 's')).toEqual(locked('high'));
    expect(lockedPriorityOf(['s_priority=high'], 's')).toBe('conflict');
  });
});

function svc(name: string, extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    name,
    pathPrefix: `/${name}/`,
    upstream: 'http://127.0.0.1:9',
    mode: 'paid',
    pricePerRequestMsat: '10',
    creditMsat: '1000',
    lifetimeSeconds: 60,
    ...extra,
  };
}
