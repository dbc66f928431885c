import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { canonicalRequest, encodeAuditEntry, type AuditEntry } from '../../../src/policy/audit.js';
import type { SpendRequest } from '../../../src/policy/types.js';
import { PaymentsContext } from '../../../src/payments/context.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

/** The canonical form as first defined: JSON of the request with amounts as decimal strings. */
const reference = (req: SpendRequest): string =>
  JSON.stringify({
    kind: req.kind,
    amountMsat: req.amountMsat.toString(),
    feeLimitMsat: req.feeLimitMsat.toString(),
    payee: {
      pubkey: req.payee.pubkey ?? null,
      domain: req.payee.domain ?? null,
      accountId: req.payee.accountId ?? null,
    },
  });

describe('audit', () => {
  it('hashes the same canonical request text as JSON.stringify of the request, for any request', () => {
    // Plain text, and text made of what JSON must escape (quotes, backslashes, controls, lone surrogates).
    const tricky = fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\ud800', '\udfff', 'é', '😀', 'a');
    const text = fc.option(
      fc.oneof(fc.string({ maxLength: 24 }), fc.string({ unit: tricky, maxLength: 24 })),
      {
        nil: undefined,
      },
    );
    fc.assert(
      fc.property(
        fc.constantFrom<SpendRequest['kind']>(
          'bolt11',
          'keysend',
          'internal_transfer',
          'l402',
          'stream',
          'escrow',
        ),
        fc.bigInt({ min: 0n, max: 2_100_000_000_000_000_000n }),
        fc.bigInt({ min: 0n, max: 2_100_000_000_000_000_000n }),
        text,
        text,
        text,
        (kind, amount, fee, pubkey, domain, accountId) => {
          const req: SpendRequest = {
            kind,
            amountMsat: msat(amount),
            feeLimitMsat: msat(fee),
            payee: {
              ...(pubkey !== undefined ? { pubkey } : {}),
              ...(domain !== undefined ? { domain } : {}),
              ...(accountId !== undefined ? { accountId } : {}),
            },
          };
          return canonicalRequest(req) === reference(req);
        },
      ),
    );
  });

  it('encodes an audit entry as JSON.stringify of it, byte for byte, shared rule results included', () => {
    const tricky = fc.constantFrom('"', '\\', '\n', '\u0000', '\ud800', 'é', '😀', 'a');
    const text = fc.oneof(fc.string({ maxLength: 16 }), fc.string({ unit: tricky, maxLength: 16 }));
    const outcome = fc.constantFrom<AuditEntry['outcome']>('allow', 'deny', 'needs_approval');
    const shared = Object.freeze({ rule: 'budget' as const, outcome: 'allow' as const });
    const rule = fc.oneof(
      fc.constant(shared),
      fc.record(
        {
          rule: fc.constantFrom<AuditEntry['rules'][number]['rule']>('frozen', 'budget', 'min_reserve'),
          outcome,
          reason: text,
        },
        { requiredKeys: ['rule', 'outcome'] },
      ),
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            id: text,
            at: fc.integer({ min: 0, max: 2 ** 50 }),
            accountId: text,
            action: fc.constantFrom<AuditEntry['action']>('bolt11', 'internal_transfer', 'escrow'),
            argsHash: text,
            outcome,
            rules: fc.array(rule, { maxLength: 6 }),
            code: text,
            reason: text,
            paymentId: text,
          },
          { requiredKeys: ['id', 'at', 'accountId', 'action', 'argsHash', 'outcome', 'rules'] },
        ),
        (entry) => encodeAuditEntry(entry) === JSON.stringify(entry),
      ),
    );
  });

  it('commits an allowed transfer with its audit entry, and keeps the entry when the ledger then refuses', async () => {
    const f = await paymentsFixture();
    await f.account('a', 10_000n);
    await f.account('b', 0n);
    await f.service.transfer('a', 'b', msat(4_000), 'first');
    // The policy allows it (no balance rule); the ledger refuses the overdraw.
    await expect(f.service.transfer('a', 'b', msat(7_000), 'second')).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
    });
    await f.ledger.flush();
    const entries = await f.audit.query('a', { limit: 10 });
    expect(entries.map((e) => [e.action, e.outcome])).toEqual([
      ['internal_transfer', 'allow'],
      ['internal_transfer', 'allow'],
    ]);
  });

  it('writes the audit record on its own when the ledger step replays an earlier one (no side records committed)', async () => {
    const f = await paymentsFixture();
    await f.account('a', 10_000n);
    const ctx = new PaymentsContext(
      f.ledger,
      f.lightning,
      f.policies,
      f.audit,
      f.events,
      silentLog,
      Date.now,
      {
        payTimeoutMs: 1000,
        approvalTtlMs: 1000,
        notFoundGraceMs: 1000,
      },
    );
    const audit: { key: string; value: string | null }[] = [];
    const req = {
      kind: 'internal_transfer' as const,
      amountMsat: msat(1),
      feeLimitMsat: msat(0),
      payee: { accountId: 'b' },
    };
    expect(ctx.decide('a', req, false, undefined, audit).outcome).toBe('allow');
    expect(audit).toHaveLength(1);
    ctx.withAudit(audit, () => ({ replayed: true }));
    await f.ledger.flush();
    expect(await f.audit.query('a', { limit: 10 })).toHaveLength(1);
  });
});
