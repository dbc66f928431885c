import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscrowService } from '../../../src/escrow/service.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'escrow-routes-operator-key-0123456789abcd';
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let escrow: EscrowService;
const auth = { authorization: `Bearer ${OP}` };

beforeAll(async () => {
  f = await paymentsFixture();
  escrow = new EscrowService(f.ledger, f.lightning, f.service, () => {}, pino({ level: 'silent' }), {
    blockPollMs: 3600_000,
  });
  await escrow.start();
  app = await accountsApp(f, OP, { escrow });
  await f.account('payer', 1_000_000n);
  await f.account('payee', 0n);
});
afterAll(async () => {
  escrow.stop();
  f.service.stop();
  await app.close();
});

describe('escrow list routes', () => {
  it('page newest first with a cursor, and refuse a malformed cursor with 400', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/accounts/payer/escrows',
        headers: auth,
        payload: {
          payeeAccountId: 'payee',
          amountMsat: '1000',
          condition: { type: 'approval' },
          funding: 'account',
          description: `#${i}`,
        },
      });
      expect(r.statusCode).toBe(201);
      await new Promise((done) => setTimeout(done, 2)); // distinct creation times
    }
    const first = await app.inject({ url: '/v1/accounts/payee/escrows?limit=3', headers: auth });
    expect(first.statusCode).toBe(200);
    const a = first.json<{ escrows: { description: string }[]; next?: string }>();
    expect(a.escrows.map((e) => e.description)).toEqual(['#4', '#3', '#2']);
    expect(a.next).toBeDefined();
    const second = await app.inject({
      url: `/v1/accounts/payee/escrows?limit=3&before=${encodeURIComponent(a.next!)}`,
      headers: auth,
    });
    const b = second.json<{ escrows: { description: string }[]; next?: string }>();
    expect(b.escrows.map((e) => e.description)).toEqual(['#1', '#0']);
    expect(b.next).toBeUndefined();
    const all = await app.inject({ url: '/v1/escrows?limit=2', headers: auth });
    expect(all.json<{ escrows: unknown[] }>().escrows).toHaveLength(2);
    for (const q of ['before=xyz', 'limit=0', 'limit=5000']) {
      const bad = await app.inject({ url: `/v1/accounts/payee/escrows?${q}`, headers: auth });
      expect(bad.statusCode).toBe(400);
    }
  });
});
