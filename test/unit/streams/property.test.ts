import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { accruedMsat } from '../../../src/streams/accrual.js';
import type { Caps } from '../../../src/streams/types.js';
import { streamsFixture } from './support.js';

type Op = { type: 'run'; ms: number } | { type: 'pause' } | { type: 'resume' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 9_000 }).map((ms): Op => ({ type: 'run', ms })) },
  { weight: 1, arbitrary: fc.constant<Op>({ type: 'pause' }) },
  { weight: 1, arbitrary: fc.constant<Op>({ type: 'resume' }) },
);

describe('local streams against the closed form (property)', () => {
  it('the payee receives exactly floor(rate × active seconds / per), capped, whatever the pauses and chunk sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt({ min: 1n, max: 5_000_000n }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 60 }),
        fc.array(op, { minLength: 1, maxLength: 12 }),
        fc.option(fc.bigInt({ min: 1n, max: 50_000_000n }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
        fc.constantFrom(0, 0.5, 0.9),
        async (rateMsat, perSeconds, chunkSeconds, ops, maxTotal, maxDuration, firstChunkStagger) => {
          const caps: Caps = {
            ...(maxTotal !== undefined ? { maxTotalMsat: msat(maxTotal) } : {}),
            ...(maxDuration !== undefined ? { maxDurationSeconds: maxDuration } : {}),
          };
          if ((rateMsat * BigInt(maxDuration ?? 1)) / BigInt(perSeconds) === 0n && maxDuration !== undefined)
            return;
          const f = await streamsFixture({ options: { chunkSeconds, firstChunkStagger } });
          try {
            await f.account('payer', 10n ** 12n);
            await f.account('payee', 0n);
            const s = await f.streams.create('payer', {
              payee: { accountId: 'payee' },
              rateMsat: msat(rateMsat),
              perSeconds,
              ...(maxTotal !== undefined ? { maxTotalMsat: msat(maxTotal) } : {}),
              ...(maxDuration !== undefined ? { maxDurationSeconds: maxDuration } : {}),
            });
            let activeMs = 0;
            let active = true;
            for (const o of ops) {
              const state = (await f.streams.get(s.id)).state;
              if (o.type === 'run') {
                await f.clock.advance(o.ms);
                if (active) activeMs += o.ms;
              } else if (o.type === 'pause' && state === 'active') {
                await f.streams.pause(s.id);
                active = false;
              } else if (o.type === 'resume' && state === 'paused') {
                await f.streams.resume(s.id);
                active = true;
              }
            }
            if ((await f.streams.get(s.id)).state !== 'stopped') await f.streams.stop(s.id);
            const expected = accruedMsat(
              { kind: 'time', rateMsat: msat(rateMsat), perSeconds },
              caps,
              Math.floor(activeMs / 1000),
              0n,
            );
            expect(balanceOf(await f.ledger.requireAccount('payee'))).toBe(expected);
            expect(balanceOf(await f.ledger.requireAccount('payer'))).toBe(10n ** 12n - expected);
            expect((await f.streams.get(s.id)).paidMsat).toBe(expected);
            expect(f.ledger.pendingTransfers()).toEqual([]);
          } finally {
            await f.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('metered: the payee receives exactly price × reported units, capped, whatever the prefund', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.bigInt({ min: 1n, max: 1_000_000n }),
        fc.option(fc.bigInt({ min: 1n, max: 10_000_000n }), { nil: undefined }),
        fc.option(fc.bigInt({ min: 1n, max: 100_000_000n }), { nil: undefined }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 3_000 })), {
          minLength: 1,
          maxLength: 10,
        }),
        async (price, prefund, maxTotal, usage) => {
          const f = await streamsFixture();
          try {
            await f.account('payer', 10n ** 13n);
            await f.account('payee', 0n);
            const s = await f.streams.create('payer', {
              payee: { accountId: 'payee' },
              priceMsatPerUnit: msat(price),
              ...(prefund !== undefined ? { prefundMsat: msat(prefund) } : {}),
              ...(maxTotal !== undefined ? { maxTotalMsat: msat(maxTotal) } : {}),
            });
            let units = 0n;
            for (const [n, ms] of usage) {
              if ((await f.streams.get(s.id)).state !== 'active') break;
              await f.streams.reportUsage(s.id, n);
              units += BigInt(n);
              await f.clock.advance(ms);
            }
            if ((await f.streams.get(s.id)).state !== 'stopped') await f.streams.stop(s.id);
            const total = price * units;
            const expected = maxTotal !== undefined && total > maxTotal ? maxTotal : total;
            expect(balanceOf(await f.ledger.requireAccount('payee'))).toBe(expected);
            expect(f.ledger.pendingTransfers()).toEqual([]);
          } finally {
            await f.close();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
