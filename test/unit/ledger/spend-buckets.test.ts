import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { SPEND_HORIZON_MS } from '../../../src/ledger/spend-buckets.js';
import type { Transfer } from '../../../src/ledger/types.js';
import { availableOf } from '../../../src/ledger/types.js';
import { spendContext } from '../../../src/payments/spend-context.js';
import { evaluate } from '../../../src/policy/engine.js';
import { WINDOWS, type Policy, type SpendContext } from '../../../src/policy/types.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

const MINUTE = 60_000;
const WINDOW_MS = [MINUTE, ...Object.values(WINDOWS)];

/** Time steps at every scale the bucket levels have (ms to days). */
const step = fc.oneof(
  fc.integer({ min: 0, max: 2_000 }),
  fc.integer({ min: 0, max: 3 * MINUTE }),
  fc.integer({ min: 0, max: 3 * 3_600_000 }),
  fc.integer({ min: 0, max: 3 * 86_400_000 }),
);

type Op =
  | { kind: 'spend'; amount: number; pending: boolean; code: string }
  | { kind: 'void'; pick: number }
  | { kind: 'post'; pick: number; share: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'reopen' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('spend' as const),
    amount: fc.integer({ min: 1, max: 5_000 }),
    pending: fc.boolean(),
    code: fc.constantFrom('payment', 'transfer', 'stream', 'escrow', 'internal_payment', 'l402_requests'),
  }),
  fc.record({ kind: fc.constant('void' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('post' as const), pick: fc.nat(), share: fc.integer({ min: 1, max: 100 }) }),
  fc.record({ kind: fc.constant('wait' as const), ms: step }),
  fc.constant({ kind: 'reopen' as const }),
);

const SPEND = new Set(['payment', 'internal_payment', 'transfer', 'stream', 'escrow']);

/** The exact model: every non-voided spending debit of `a` created at or after `since`. */
function exact(transfers: Map<string, Transfer>, since: number): { sum: bigint; count: number } {
  let sum = 0n;
  let count = 0;
  for (const t of transfers.values()) {
    if (t.debitAccountId !== 'a' || !SPEND.has(t.code) || t.state === 'voided' || t.createdAt < since)
      continue;
    sum += t.amount;
    count += 1;
  }
  return { sum, count };
}

async function fresh(clock: { now: number }) {
  const store = new MemoryLedgerStore();
  const ledger = await Ledger.open(store, { now: () => clock.now });
  ledger.createAccount({ id: 'world', kind: 'system', name: 'world', allowNegative: true });
  ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
  ledger.createAccount({ id: 'b', kind: 'agent', name: 'b' });
  ledger.transfer({
    debitAccountId: 'world',
    creditAccountId: 'a',
    amount: msat(10n ** 9n),
    code: 'funding',
  });
  await ledger.flush();
  return { store, ledger };
}

describe('spend buckets against the exact sliding window', () => {
  it('never sum or count less than the exact window, across voids, lower posts and restarts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 10 * 86_400_000 }),
        fc.array(op, { minLength: 1, maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: SPEND_HORIZON_MS }), { minLength: 1, maxLength: 5 }),
        async (start, ops, lookbacks) => {
          const clock = { now: 1_700_000_000_000 + start };
          const { store } = await fresh(clock);
          let ledger = await Ledger.open(store, { now: () => clock.now });
          await ledger.ensure({ accounts: ['a', 'b'] });
          const model = new Map<string, Transfer>();
          const pending = () => [...model.values()].filter((t) => t.state === 'pending');
          for (const o of ops) {
            if (o.kind === 'wait') clock.now += o.ms;
            else if (o.kind === 'reopen') {
              await ledger.flush();
              ledger = await Ledger.open(store, { now: () => clock.now });
              await ledger.ensure({ accounts: ['a', 'b'] });
            } else if (o.kind === 'spend') {
              const t = ledger.transfer({
                debitAccountId: 'a',
                creditAccountId: 'b',
                amount: msat(o.amount),
                code: o.code,
                pending: o.pending,
              }).value;
              model.set(t.id, t);
            } else {
              const open = pending();
              const t = open[o.pick % Math.max(1, open.length)];
              if (!t) continue;
              const done =
                o.kind === 'void'
                  ? ledger.void(t.id).value
                  : ledger.post(t.id, msat((t.amount * BigInt(o.share)) / 100n || 1n)).value;
              model.set(t.id, done);
            }
            const figures = ledger.spending('a');
            for (const back of [...WINDOW_MS, ...lookbacks]) {
              const since = clock.now - back;
              const want = exact(model, since);
              expect(figures.spentSince(since)).toBeGreaterThanOrEqual(want.sum);
              expect(figures.countSince(since)).toBeGreaterThanOrEqual(want.count);
            }
            expect(figures.inFlight).toBe(pending().filter((t) => t.code === 'payment').length);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a budget or rate rule evaluated on the buckets never admits what the exact window refuses', async () => {
    const rule = fc.oneof(
      fc.record({
        type: fc.constant('budget' as const),
        window: fc.constantFrom('hour' as const, 'day' as const, 'week' as const, 'month' as const),
        maxMsat: fc.integer({ min: 1, max: 40_000 }).map((n) => msat(n)),
      }),
      fc.record({ type: fc.constant('max_per_minute' as const), max: fc.integer({ min: 1, max: 8 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(rule, { minLength: 1, maxLength: 3 }),
        fc.array(
          fc.record({
            amount: fc.integer({ min: 1, max: 5_000 }),
            wait: step,
            voidPick: fc.option(fc.nat()),
          }),
          { minLength: 1, maxLength: 50 },
        ),
        async (rules, requests) => {
          const clock = { now: 1_700_000_000_000 };
          const { ledger } = await fresh(clock);
          const policy: Policy = { rules: [...rules, { type: 'max_per_payment', maxMsat: msat(10n ** 9n) }] };
          const model = new Map<string, Transfer>();
          for (const r of requests) {
            clock.now += r.wait;
            const open = [...model.values()].filter((t) => t.state === 'pending');
            const victim = r.voidPick === null ? undefined : open[r.voidPick % Math.max(1, open.length)];
            if (victim) model.set(victim.id, ledger.void(victim.id).value);
            const req = {
              kind: 'bolt11' as const,
              amountMsat: msat(r.amount),
              feeLimitMsat: msat(0),
              payee: {},
            };
            const bucketed = evaluate(policy, req, spendContext(ledger, 'a', clock.now));
            const a = await ledger.requireAccount('a');
            const exactCtx: SpendContext = {
              frozen: false,
              availableMsat: availableOf(a),
              spentSince: (since) => exact(model, since).sum,
              countSince: (since) => exact(model, since).count,
              inFlight: 0,
              now: clock.now,
            };
            const truth = evaluate(policy, req, exactCtx);
            if (bucketed.outcome === 'allow') expect(truth.outcome).toBe('allow');
            if (bucketed.outcome !== 'allow') continue;
            const t = ledger.transfer({
              debitAccountId: 'a',
              creditAccountId: 'b',
              amount: msat(r.amount),
              code: 'payment',
              pending: true,
            }).value;
            model.set(t.id, t);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('no interleaving of concurrent payments overdraws the account or exceeds a budget, across restarts', async () => {
    const round = fc.record({
      payments: fc.array(fc.integer({ min: 1, max: 4_000 }), { minLength: 1, maxLength: 8 }),
      settle: fc.array(fc.tuple(fc.nat(), fc.boolean()), { maxLength: 4 }),
      wait: step,
      restart: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.integer({ min: 1_000, max: 20_000 }),
        fc.constantFrom('hour' as const, 'day' as const, 'week' as const, 'month' as const),
        fc.integer({ min: 1, max: 6 }),
        fc.array(round, { minLength: 1, maxLength: 6 }),
        async (sch, budget, window, perMinute, rounds) => {
          const clock = { now: 1_700_000_000_000 };
          const store = new MemoryLedgerStore();
          let ledger = await Ledger.open(store, { now: () => clock.now });
          ledger.createAccount({ id: 'world', kind: 'system', name: 'world', allowNegative: true });
          ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
          ledger.createAccount({ id: 'b', kind: 'agent', name: 'b' });
          ledger.transfer({
            debitAccountId: 'world',
            creditAccountId: 'a',
            amount: msat(30_000),
            code: 'funding',
          });
          const policy: Policy = {
            rules: [
              { type: 'budget', window, maxMsat: msat(budget) },
              { type: 'max_per_minute', max: perMinute },
            ],
          };
          const model = new Map<string, Transfer>();
          const check = () => {
            const a = ledger.accountNow('a')!;
            expect(availableOf(a)).toBeGreaterThanOrEqual(0n);
            expect(exact(model, clock.now - WINDOWS[window]).sum).toBeLessThanOrEqual(BigInt(budget));
            expect(exact(model, clock.now - MINUTE).count).toBeLessThanOrEqual(perMinute);
          };
          // One payment: ensure, a scheduled gap (other payments run there), then the policy
          // check and the reservation in one synchronous step.
          const pay = async (l: Ledger, amount: number) => {
            await l.ensure({ accounts: ['a', 'b'] });
            await sch.schedule(Promise.resolve(), `pay ${amount}`);
            const req = {
              kind: 'bolt11' as const,
              amountMsat: msat(amount),
              feeLimitMsat: msat(0),
              payee: {},
            };
            if (evaluate(policy, req, spendContext(l, 'a', clock.now)).outcome !== 'allow') return;
            try {
              const t = l.transfer({
                debitAccountId: 'a',
                creditAccountId: 'b',
                amount: msat(amount),
                code: 'payment',
                pending: true,
              }).value;
              model.set(t.id, t);
            } catch (err) {
              expect(err).toMatchObject({ code: 'INSUFFICIENT_FUNDS' });
            }
            check();
          };
          for (const r of rounds) {
            clock.now += r.wait;
            const l = ledger;
            await sch.waitFor(Promise.all(r.payments.map((amount) => pay(l, amount))));
            for (const [pick, fail] of r.settle) {
              const open = [...model.values()].filter((t) => t.state === 'pending');
              const t = open[pick % Math.max(1, open.length)];
              if (t) model.set(t.id, fail ? ledger.void(t.id).value : ledger.post(t.id).value);
            }
            if (r.restart) {
              await ledger.flush();
              ledger = await Ledger.open(store, { now: () => clock.now });
              await ledger.ensure({ accounts: ['a', 'b'] });
            }
            check();
          }
        },
      ),
      { numRuns: 100 },
    );
  }, 60_000);
});
