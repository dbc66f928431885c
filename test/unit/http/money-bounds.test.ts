import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MSAT } from '../../../src/domain/msat.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'money-bounds-operator-key-0123456789abcdef';
const auth = { authorization: `Bearer ${OP}` };
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;

beforeAll(async () => {
  f = await paymentsFixture();
  app = await accountsApp(f, OP);
  await f.account('payer', 1_000_000n);
  await f.account('rich', 0n);
});
afterAll(async () => {
  f.service.stop();
  await app.close();
});

const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: auth, payload });
const account = async (id: string) =>
  (await app.inject({ url: `/v1/accounts/${id}`, headers: auth })).json<Record<string, string>>();

describe('keysend custom records are validated before anything is reserved', () => {
  const keysend = (records: { type: string; value: string }[]) =>
    post('/v1/accounts/payer/payments', {
      keysend: { destination: '03' + '44'.repeat(32), amountMsat: '1000', records },
      maxFeeMsat: '10',
    });

  it.each([
    ['a type above 2^64 - 1 (it would wrap)', [{ type: '99999999999999999999', value: '00' }]],
    ['the type 2^64', [{ type: '18446744073709551616', value: '00' }]],
    ['a type below the custom range', [{ type: '65535', value: '00' }]],
    ["keysend's own preimage type", [{ type: '5482373484', value: '00'.repeat(32) }]],
    [
      'a type given twice',
      [
        { type: '65536', value: '01' },
        { type: '65536', value: '02' },
      ],
    ],
    ['records larger than an onion can carry', [{ type: '65536', value: 'ab'.repeat(1025) }]],
  ])('refuses %s with a 400', async (_what, records) => {
    const before = await account('payer');
    const calls = f.lightning.payCalls;
    const res = await keysend(records);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('INVALID_ARGUMENT');
    expect(await account('payer')).toEqual(before);
    expect(f.lightning.payCalls).toBe(calls);
  });

  it('sends records at the edges of the valid range', async () => {
    const res = await keysend([
      { type: '65536', value: '01' },
      { type: '18446744073709551615', value: 'ab'.repeat(512) },
    ]);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ status: 'succeeded' });
  });
});

describe('one credit ceiling and one rule for crediting system accounts', () => {
  it('refuses a second funding of 2.1e18 msat, and any funding past what the operator can allocate', async () => {
    // The operator has allocated 1,000,000 msat to `payer`: this takes the allocations to MAX_MSAT.
    const first = await post('/v1/accounts/rich/fund', { amountMsat: (MAX_MSAT - 1_000_000n).toString() });
    expect(first.statusCode).toBe(200);
    for (const amountMsat of [MAX_MSAT.toString(), '1']) {
      for (const id of ['rich', 'payer']) {
        const res = await post(`/v1/accounts/${id}/fund`, { amountMsat });
        expect(res.statusCode).toBe(409);
        expect(res.json().error.code).toBe('BALANCE_LIMIT_EXCEEDED');
      }
    }
    expect((await account('rich')).balanceMsat).toBe((MAX_MSAT - 1_000_000n).toString());
  });

  it('books a settled invoice whose credit would pass the ceiling to the operator, once, with an alert', async () => {
    const inv = (await post('/v1/accounts/rich/invoices', { amountMsat: '1000001' })).json<{
      paymentHash: string;
    }>();
    const alerts: string[] = [];
    f.events.subscribe('rich', (e) => e.type === 'alert' && alerts.push(e.code));
    const operator = BigInt((await account('sys:operator')).balanceMsat!);
    const settled = f.lightning.settle(inv.paymentHash);
    await f.service.onInvoice(settled);
    await f.service.onInvoice(settled); // a redelivery books nothing again
    expect((await account('rich')).balanceMsat).toBe((MAX_MSAT - 1_000_000n).toString());
    expect(BigInt((await account('sys:operator')).balanceMsat!)).toBe(operator + 1_000_001n);
    expect(await f.service.getInvoice(inv.paymentHash)).toMatchObject({
      state: 'settled',
      heldByOperatorMsat: 1_000_001n,
    });
    expect(alerts).toEqual(['INVOICE_HELD_ABOVE_CEILING']);
  });

  it('refuses to fund a system account, as transfers to one are refused', async () => {
    for (const id of ['sys:escrow', 'sys:lightning', 'sys:operator']) {
      await f.ledger.flush();
      if (!(await f.ledger.getAccount(id)))
        await f.ledger.createAccount({ id, kind: 'system', name: id, allowNegative: false }).durable;
      const before = (await f.ledger.requireAccount(id)).creditsPosted;
      const fund = await post(`/v1/accounts/${encodeURIComponent(id)}/fund`, { amountMsat: '1000' });
      const transfer = await post('/v1/accounts/payer/transfers', { toAccountId: id, amountMsat: '1000' });
      expect(fund.statusCode).toBe(400);
      expect(fund.json().error.code).toBe(transfer.json().error.code);
      expect((await f.ledger.requireAccount(id)).creditsPosted).toBe(before);
    }
  });
});
