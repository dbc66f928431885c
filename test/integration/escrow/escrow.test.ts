import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoice, getInvoice, getPayment, pay } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import { signReceipt, xOnlyPublicKey } from '../../../src/escrow/receipt.js';
import type { Escrow } from '../../../src/escrow/types.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts } from '../../../src/main.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, btcd, eventually, rawLnd } from '../../support/regtest.js';

let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let s: AccountServices;
const payer = { type: 'account', accountId: 'esc-payer' } as const;
const payee = { type: 'account', accountId: 'esc-payee' } as const;

beforeAll(async () => {
  backend = await backendFor('alice');
  const config = { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-escrow-')) };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }), {
    payTimeoutMs: 2_000,
    escrow: { blockPollMs: 300 },
  });
  s = stack.services;
  for (const id of ['esc-payer', 'esc-payee']) {
    await s.ledger.createAccount({ id, kind: 'agent', name: id }).durable;
    await s.policies.set(id, tierPolicy('L2'));
  }
});
afterAll(async () => {
  await stack?.close();
  await backend?.close();
});

const escrow = () => s.escrow!;
const state = async (id: string) => (await escrow().get(id)).state;
const payeeBalance = () => balanceOf(s.ledger.accountNow('esc-payee')!);

/** Bob pays the hold invoice; the promise settles when the escrow releases or refunds. */
async function bobPays(e: Escrow): Promise<{ outcome: Promise<'paid' | 'failed'> }> {
  const bob = await rawLnd('bob');
  const outcome = pay({ lnd: bob, request: e.request! }).then(
    () => 'paid' as const,
    () => 'failed' as const,
  );
  await eventually(
    async () => ((await state(e.id)) === 'funded' ? true : undefined),
    30_000,
    'the HTLC to be held',
  );
  return { outcome };
}

async function lightningEscrow(extra: Partial<Parameters<ReturnType<typeof escrow>['create']>[1]> = {}) {
  return escrow().create('esc-payer', {
    payeeAccountId: 'esc-payee',
    amountMsat: msat(40_000_000),
    description: 'delivery of parcel',
    condition: { type: 'approval' },
    ...extra,
  });
}

describe('escrow on hold invoices (regtest)', () => {
  it('holds bob’s payment and releases it to the payee on the payer’s approval', async () => {
    const before = payeeBalance();
    const e = await lightningEscrow();
    expect(e.request).toMatch(/^lnbcrt/);
    const { outcome } = await bobPays(e);
    const funded = await escrow().get(e.id);
    expect(funded.htlcExpiryHeight).toBeGreaterThan(0);
    expect(payeeBalance()).toBe(before); // nothing moves while held
    const released = await escrow().approve(e.id, payer);
    expect(released.state).toBe('released');
    expect(await outcome).toBe('paid');
    expect(payeeBalance()).toBe(before + 40_000_000n);
    const inv = await getInvoice({ lnd: await rawLnd('alice'), id: e.paymentHash });
    expect(inv.is_confirmed).toBe(true);
  });

  it('refunds bob at the deadline', async () => {
    const before = payeeBalance();
    const e = await lightningEscrow({ timeoutSeconds: 4 });
    const { outcome } = await bobPays(e);
    expect(await outcome).toBe('failed');
    expect(await escrow().get(e.id)).toMatchObject({ state: 'refunded', reason: 'deadline' });
    expect(payeeBalance()).toBe(before);
    const paid = await getPayment({ lnd: await rawLnd('bob'), id: e.paymentHash });
    expect(paid.is_failed).toBe(true);
  });

  it('releases on a receipt signed by the payee’s registered key, not on a forged one', async () => {
    const deviceKey = randomBytes(32).toString('hex');
    await escrow().registerReceiptKey('esc-payee', xOnlyPublicKey(deviceKey));
    const before = payeeBalance();
    const e = await lightningEscrow({ condition: { type: 'receipt' } });
    const { outcome } = await bobPays(e);
    const forged = signReceipt(randomBytes(32).toString('hex'), e.id, e.paymentHash, 'delivered');
    await expect(
      escrow().submitReceipt(e.id, payee, { payload: 'delivered', signature: forged }),
    ).rejects.toMatchObject({ code: 'INVALID_PROOF' });
    expect(await state(e.id)).toBe('funded');
    const good = signReceipt(deviceKey, e.id, e.paymentHash, 'delivered');
    expect((await escrow().submitReceipt(e.id, payee, { payload: 'delivered', signature: good })).state).toBe(
      'released',
    );
    expect(await outcome).toBe('paid');
    expect(payeeBalance()).toBe(before + 40_000_000n);
  });

  it('releases when the payee reveals the preimage of its own hash', async () => {
    const preimage = randomBytes(32);
    const hash = createHash('sha256').update(preimage).digest('hex');
    const e = await lightningEscrow({ condition: { type: 'preimage', paymentHash: hash } });
    const { outcome } = await bobPays(e);
    await expect(escrow().submitPreimage(e.id, payee, '00'.repeat(32))).rejects.toMatchObject({
      code: 'INVALID_PROOF',
    });
    expect((await escrow().submitPreimage(e.id, payee, preimage.toString('hex'))).state).toBe('released');
    expect(await outcome).toBe('paid');
  });

  it('cancels the held HTLC a safety margin before its CLTV expiry as blocks are mined', async () => {
    const e = await lightningEscrow({ cltvDelta: 40, timeoutSeconds: 3600 });
    // A 40-block hold can safely last (40 - 18 - 12) blocks: the wall-clock deadline must fit in that.
    expect(e.cltvDelta).toBe(40);
    const { outcome } = await bobPays(e);
    const { blockHeight } = await backend.getNodeInfo();
    const expiry = (await escrow().get(e.id)).htlcExpiryHeight!;
    const toMine = expiry - blockHeight - (18 + 12);
    expect(toMine).toBeGreaterThan(0);
    if (toMine > 1) await btcd().call('generate', [toMine - 1]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await state(e.id)).toBe('funded'); // one block short of the margin: still held
    await btcd().call('generate', [1]);
    expect(await outcome).toBe('failed');
    await eventually(
      async () => ((await state(e.id)) === 'refunded' ? true : undefined),
      15_000,
      'the safety cancel',
    );
    expect((await escrow().get(e.id)).reason).toBe('cltv_safety');
  });

  it('an escrow nobody funds expires at its deadline and its invoice is canceled', async () => {
    const e = await lightningEscrow({ timeoutSeconds: 2 });
    await eventually(async () => ((await state(e.id)) === 'expired' ? true : undefined), 15_000, 'expiry');
    const inv = await getInvoice({ lnd: await rawLnd('alice'), id: e.paymentHash });
    expect(inv.is_canceled).toBe(true);
  });

  it('pays the released amount out to the invoice the payee named', async () => {
    await s.policies.set('esc-payee', tierPolicy('L3'));
    const carol = await rawLnd('carol');
    const payout = await createInvoice({ lnd: carol, mtokens: '40000000', description: 'payout' });
    const e = await lightningEscrow({ payoutRequest: payout.request });
    const { outcome } = await bobPays(e);
    const before = payeeBalance();
    await escrow().approve(e.id, payer);
    expect(await outcome).toBe('paid');
    await eventually(
      async () => ((await getInvoice({ lnd: carol, id: payout.id })).is_confirmed ? true : undefined),
      30_000,
      'the payout to settle at carol',
    );
    const paid = await eventually(
      async () => (await escrow().get(e.id)).payoutPaymentId,
      10_000,
      'the payout id',
    );
    const payment = s.payments.getPayment(paid)!;
    expect(payment.status).toBe('succeeded');
    // Credited on release, then spent on the payout (plus its routing fee).
    expect(payeeBalance()).toBe(before + 40_000_000n - 40_000_000n - payment.feeMsat!);
  });

  it('refuses deadlines the CLTV budget cannot cover, and final CLTVs wallets refuse', async () => {
    await expect(lightningEscrow({ cltvDelta: 40, timeoutSeconds: 24 * 3600 })).rejects.toMatchObject({
      code: 'DEADLINE_TOO_FAR',
    });
    await expect(lightningEscrow({ cltvDelta: 451 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
