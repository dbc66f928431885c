import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { evaluate } from '../../../src/policy/engine.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import type { PolicyRule, SpendContext, SpendRequest } from '../../../src/policy/types.js';

const req = (amount: number, fee = 0, payee: SpendRequest['payee'] = { pubkey: '02aa' }): SpendRequest => ({
  kind: 'bolt11',
  amountMsat: msat(amount),
  feeLimitMsat: msat(fee),
  payee,
});

function ctx(over: Partial<SpendContext> & { debits?: [number, number][] } = {}): SpendContext {
  const debits = over.debits ?? [];
  return {
    frozen: false,
    availableMsat: 10_000n,
    spentSince: (since) => debits.filter(([at]) => at >= since).reduce((s, [, a]) => s + BigInt(a), 0n),
    countSince: (since) => debits.filter(([at]) => at >= since).length,
    inFlight: 0,
    now: 1_000_000_000,
    ...over,
  };
}

const only = (rule: PolicyRule) => ({ rules: [rule] });
const NOW = 1_000_000_000;
const HOUR = 3600_000;

describe('policy rules: each allows and denies exactly as specified', () => {
  it.each<
    [string, PolicyRule, SpendRequest, Partial<SpendContext> & { debits?: [number, number][] }, string]
  >([
    [
      'cap counts the fee: 900+100 is at the cap',
      { type: 'max_per_payment', maxMsat: msat(1000) },
      req(900, 100),
      {},
      'allow',
    ],
    [
      'cap counts the fee: 900+101 is over',
      { type: 'max_per_payment', maxMsat: msat(1000) },
      req(900, 101),
      {},
      'PAYMENT_CAP_EXCEEDED',
    ],
    [
      'hour budget: 600 spent + 400 = limit',
      { type: 'budget', window: 'hour', maxMsat: msat(1000) },
      req(400),
      { debits: [[NOW - HOUR + 1, 600]] },
      'allow',
    ],
    [
      'hour budget: 600 spent + 401 > limit',
      { type: 'budget', window: 'hour', maxMsat: msat(1000) },
      req(401),
      { debits: [[NOW - HOUR + 1, 600]] },
      'QUOTA_EXCEEDED',
    ],
    [
      'sliding window: spend just outside the hour no longer counts',
      { type: 'budget', window: 'hour', maxMsat: msat(1000) },
      req(1000),
      { debits: [[NOW - HOUR - 1, 600]] },
      'allow',
    ],
    [
      'day budget',
      { type: 'budget', window: 'day', maxMsat: msat(1000) },
      req(500),
      { debits: [[NOW - 23 * HOUR, 501]] },
      'QUOTA_EXCEEDED',
    ],
    [
      'month budget',
      { type: 'budget', window: 'month', maxMsat: msat(1000) },
      req(500),
      { debits: [[NOW - 29 * 24 * HOUR, 500]] },
      'allow',
    ],
    [
      'share: 25% of 10000 = 2500 allowed',
      { type: 'max_share_of_balance', basisPoints: 2500 },
      req(2400, 100),
      {},
      'allow',
    ],
    [
      'share: 2501 denied',
      { type: 'max_share_of_balance', basisPoints: 2500 },
      req(2401, 100),
      {},
      'BALANCE_SHARE_EXCEEDED',
    ],
    [
      'reserve: leaves exactly 1000',
      { type: 'min_reserve', minMsat: msat(1000) },
      req(8900, 100),
      {},
      'allow',
    ],
    [
      'reserve: would leave 999',
      { type: 'min_reserve', minMsat: msat(1000) },
      req(8901, 100),
      {},
      'RESERVE_REQUIRED',
    ],
    [
      'allowlist by pubkey (case-insensitive)',
      { type: 'payee_allowlist', pubkeys: ['02AA'] },
      req(1),
      {},
      'allow',
    ],
    ['allowlist miss', { type: 'payee_allowlist', pubkeys: ['02bb'] }, req(1), {}, 'PAYEE_RESTRICTED'],
    [
      'allowlist by L402 domain incl. subdomain',
      { type: 'payee_allowlist', domains: ['api.example.com'] },
      req(1, 0, { domain: 'eu.api.example.com' }),
      {},
      'allow',
    ],
    [
      'allowlist domain is not a suffix match of another name',
      { type: 'payee_allowlist', domains: ['example.com'] },
      req(1, 0, { domain: 'badexample.com' }),
      {},
      'PAYEE_RESTRICTED',
    ],
    ['denylist hit', { type: 'payee_denylist', pubkeys: ['02aa'] }, req(1), {}, 'PAYEE_RESTRICTED'],
    [
      'denylist miss',
      { type: 'payee_denylist', domains: ['evil.example'] },
      req(1, 0, { domain: 'good.example' }),
      {},
      'allow',
    ],
    ['in flight below max', { type: 'max_in_flight', max: 2 }, req(1), { inFlight: 1 }, 'allow'],
    ['in flight at max', { type: 'max_in_flight', max: 2 }, req(1), { inFlight: 2 }, 'TOO_MANY_IN_FLIGHT'],
    [
      'per minute below max',
      { type: 'max_per_minute', max: 2 },
      req(1),
      {
        debits: [
          [NOW - 61_000, 1],
          [NOW - 59_000, 1],
        ],
      },
      'allow',
    ],
    [
      'per minute at max',
      { type: 'max_per_minute', max: 2 },
      req(1),
      {
        debits: [
          [NOW - 59_000, 1],
          [NOW - 1, 1],
        ],
      },
      'RATE_LIMITED',
    ],
    [
      'approval not needed at threshold',
      { type: 'approval_above', thresholdMsat: msat(1000) },
      req(1000),
      {},
      'allow',
    ],
    [
      'approval needed above threshold',
      { type: 'approval_above', thresholdMsat: msat(1000) },
      req(1001),
      {},
      'NEEDS_APPROVAL',
    ],
    [
      'approval given',
      { type: 'approval_above', thresholdMsat: msat(1000) },
      req(1001),
      { approved: true },
      'allow',
    ],
    ['no spending', { type: 'no_spending' }, req(1), {}, 'SPENDING_DISABLED'],
  ])('%s', (_name, rule, request, context, expected) => {
    const d = evaluate(only(rule), request, ctx(context));
    if (expected === 'allow') expect(d.outcome).toBe('allow');
    else expect(d.code).toBe(expected);
    expect(d.evaluated).toHaveLength(1);
  });
});

describe('policy evaluation', () => {
  it('denies by default and when frozen, before any rule', () => {
    expect(evaluate(undefined, req(1), ctx()).code).toBe('NO_POLICY');
    expect(evaluate({ rules: [] }, req(1), ctx()).code).toBe('NO_POLICY');
    const frozen = evaluate(tierPolicy('L3'), req(1), ctx({ frozen: true }));
    expect(frozen).toMatchObject({ outcome: 'deny', code: 'ACCOUNT_FROZEN' });
  });

  it('stops at the first deny and records every rule it evaluated', () => {
    const d = evaluate(
      {
        rules: [
          { type: 'max_in_flight', max: 9 },
          { type: 'max_per_payment', maxMsat: msat(5) },
          { type: 'no_spending' },
        ],
      },
      req(6),
      ctx(),
    );
    expect(d.code).toBe('PAYMENT_CAP_EXCEEDED');
    expect(d.evaluated.map((r) => [r.rule, r.outcome])).toEqual([
      ['max_in_flight', 'allow'],
      ['max_per_payment', 'deny'],
    ]);
  });

  it('lets a later deny override an earlier needs-approval', () => {
    const d = evaluate(
      { rules: [{ type: 'approval_above', thresholdMsat: msat(1) }, { type: 'no_spending' }] },
      req(5),
      ctx(),
    );
    expect(d.code).toBe('SPENDING_DISABLED');
  });

  it('tiers: L0 view-only, L1 small daily limit, L2 large daily limit, L3 no daily limit', () => {
    expect(evaluate(tierPolicy('L0'), req(1), ctx()).code).toBe('SPENDING_DISABLED');
    const big = { availableMsat: 10n ** 15n };
    expect(evaluate(tierPolicy('L1'), req(10_000_000), ctx(big)).outcome).toBe('allow');
    expect(
      evaluate(tierPolicy('L1'), req(5_000_000), ctx({ ...big, debits: [[NOW - 1000, 96_000_000]] })).code,
    ).toBe('QUOTA_EXCEEDED');
    expect(
      evaluate(tierPolicy('L2'), req(500_000_000), ctx({ ...big, debits: [[NOW - 1000, 96_000_000]] }))
        .outcome,
    ).toBe('allow');
    expect(
      evaluate(tierPolicy('L3'), req(10 ** 14), ctx({ ...big, debits: [[NOW - 1000, 10 ** 14]] })).outcome,
    ).toBe('allow');
    expect(
      tierPolicy('L1', {
        L1: { dailyMsat: 5n, perPaymentMsat: 5n },
        L2: { dailyMsat: 1n, perPaymentMsat: 1n },
      }).rules[0],
    ).toEqual({
      type: 'max_per_payment',
      maxMsat: 5n,
    });
  });

  it('marks rate denials as retryable with a delay', () => {
    const d = evaluate({ rules: [{ type: 'max_in_flight', max: 0 }] }, req(1), ctx());
    expect(d.retryAfterMs).toBe(1000);
  });
});
