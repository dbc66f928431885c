import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cancelHodlInvoice,
  createHodlInvoice,
  createInvoice,
  getInvoice,
  getPayments,
  pay,
  settleHodlInvoice,
} from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts } from '../../../src/main.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';

let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let s: AccountServices;

beforeAll(async () => {
  backend = await backendFor('alice');
  const config = { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-pay-')) };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }), { payTimeoutMs: 2_000 });
  s = stack.services;
});
afterAll(async () => {
  await stack?.close();
  await backend?.close();
});

async function agent(id: string, fundMsat = 0n, tier: 'L2' | 'L3' = 'L2'): Promise<void> {
  await s.ledger.createAccount({ id, kind: 'agent', name: id }).durable;
  await s.policies.set(id, tierPolicy(tier));
  if (fundMsat > 0n)
    await s.ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: id,
      amount: msat(fundMsat),
      code: 'funding',
    }).durable;
}

describe('payments on regtest', () => {
  it('an agent funded by bob paying its invoice pays carol’s invoice over two hops', async () => {
    await agent('agent-1');
    const inv = await s.payments.createInvoice('agent-1', {
      amountMsat: msat(200_000_000),
      description: 'top up',
    });
    await pay({ lnd: await rawLnd('bob'), request: inv.request });
    await eventually(
      () => (balanceOf(s.ledger.accountNow('agent-1')!) === 200_000_000n ? true : undefined),
      30_000,
      'credit',
    );

    const carol = await rawLnd('carol');
    const bill = await createInvoice({ lnd: carol, mtokens: '50000000', description: 'service' });
    const p = await s.payments.pay('agent-1', { request: bill.request, maxFeeMsat: msat(100_000) });
    expect(p).toMatchObject({ status: 'succeeded', amountMsat: 50_000_000n });
    expect(p.feeMsat).toBeGreaterThan(0n);
    expect((await getInvoice({ lnd: carol, id: bill.id })).is_confirmed).toBe(true);
    const account = await s.ledger.requireAccount('agent-1');
    expect(balanceOf(account)).toBe(200_000_000n - 50_000_000n - p.feeMsat!);
    expect(availableOf(account)).toBe(balanceOf(account)); // the unused fee reserve came back
  });

  it('a failing payment releases the reservation', async () => {
    await agent('agent-2', 10_000_000_000n, 'L3');
    const before = availableOf(await s.ledger.requireAccount('agent-2'));
    // 8M sat cannot route: alice has about 5M sat towards bob.
    const big = await createInvoice({
      lnd: await rawLnd('carol'),
      mtokens: '8000000000',
      description: 'too big',
    });
    const p = await s.payments.pay('agent-2', { request: big.request, maxFeeMsat: msat(1_000_000) });
    expect(p.status).toBe('failed');
    expect(['NO_ROUTE', 'INSUFFICIENT_BALANCE']).toContain(p.failureReason);
    expect(availableOf(await s.ledger.requireAccount('agent-2'))).toBe(before);
    expect(s.ledger.getTransferSync(p.reservationId)?.state).toBe('voided');
  });

  it('a payment whose call times out stays pending, then settles correctly once LND reports it', async () => {
    await agent('agent-3', 1_000_000_000n);
    const carol = await rawLnd('carol');
    const preimage = randomBytes(32);
    const id = createHash('sha256').update(preimage).digest('hex');
    const hold = await createHodlInvoice({ lnd: carol, id, mtokens: '30000000', description: 'held' });
    const p = await s.payments.pay('agent-3', { request: hold.request, maxFeeMsat: msat(100_000) });
    expect(p.status).toBe('pending'); // the 2 s wait passed; the HTLC is still held by carol
    const held = availableOf(await s.ledger.requireAccount('agent-3'));
    expect(held).toBe(1_000_000_000n - 30_000_000n - 100_000n);
    await s.payments.reconcile({ full: false });
    expect(s.payments.getPayment(p.id)?.status).toBe('pending');
    await eventually(
      async () => ((await getInvoice({ lnd: carol, id })).is_held ? true : undefined),
      30_000,
      'held',
    );
    await settleHodlInvoice({ lnd: carol, secret: preimage.toString('hex') });
    const done = await eventually(
      () => (s.payments.getPayment(p.id)?.status === 'succeeded' ? s.payments.getPayment(p.id) : undefined),
      30_000,
      'tracked to success',
    );
    expect(done!.preimage).toBe(preimage.toString('hex'));
    expect(balanceOf(await s.ledger.requireAccount('agent-3'))).toBe(
      1_000_000_000n - 30_000_000n - done!.feeMsat!,
    );

    // And the other way: a held payment that carol cancels ends failed with the funds back.
    const id2 = createHash('sha256').update(randomBytes(32)).digest('hex');
    const hold2 = await createHodlInvoice({ lnd: carol, id: id2, mtokens: '10000000' });
    const p2 = await s.payments.pay('agent-3', { request: hold2.request, maxFeeMsat: msat(100_000) });
    expect(p2.status).toBe('pending');
    await eventually(
      async () => ((await getInvoice({ lnd: carol, id: id2 })).is_held ? true : undefined),
      30_000,
      'held',
    );
    await cancelHodlInvoice({ lnd: carol, id: id2 });
    await eventually(
      () => (s.payments.getPayment(p2.id)?.status === 'failed' ? true : undefined),
      30_000,
      'tracked to failure',
    );
    expect(balanceOf(await s.ledger.requireAccount('agent-3'))).toBe(
      availableOf(await s.ledger.requireAccount('agent-3')),
    );
  });

  it('a payment between two accounts on the gateway does not touch LND', async () => {
    await agent('agent-4', 1_000_000n);
    await agent('agent-5');
    const alice = await rawLnd('alice');
    const paymentsBefore = (await getPayments({ lnd: alice })).payments.length;
    const inv = await s.payments.createInvoice('agent-5', {
      amountMsat: msat(400_000),
      description: 'internal',
    });
    const p = await s.payments.pay('agent-4', { request: inv.request });
    expect(p).toMatchObject({ kind: 'internal', status: 'succeeded', feeMsat: 0n });
    expect(createHash('sha256').update(Buffer.from(p.preimage!, 'hex')).digest('hex')).toBe(inv.paymentHash);
    expect(balanceOf(await s.ledger.requireAccount('agent-5'))).toBe(400_000n);
    expect((await getPayments({ lnd: alice })).payments.length).toBe(paymentsBefore);
    // The LND invoice is canceled so nobody can pay it a second time from outside.
    await eventually(
      async () => ((await getInvoice({ lnd: alice, id: inv.paymentHash })).is_canceled ? true : undefined),
      10_000,
      'canceled',
    );
  });
});
