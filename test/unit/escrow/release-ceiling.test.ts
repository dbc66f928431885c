import { describe, expect, it } from 'vitest';
import { paymentHashOf } from '../../../src/domain/hex.js';
import { MAX_MSAT, msat } from '../../../src/domain/msat.js';
import { ESCROW_ACCOUNT } from '../../../src/escrow/service.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { CreateHoldInvoiceArgs, Invoice } from '../../../src/lightning/types.js';
import { LIGHTNING_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import type { FakeLightning } from '../../support/fake-lightning.js';
import { escrowFixture } from './fixture.js';

const payer = { type: 'account', accountId: 'payer' } as const;
const payee = { type: 'account', accountId: 'payee' } as const;
const AMOUNT = msat(300_000);

type Fixture = Awaited<ReturnType<typeof escrowFixture>>;
const bal = (f: Fixture, id: string) => balanceOf(f.ledger.accountNow(id)!);

/** Brings `accountId` to `room` msat below the ledger's balance ceiling. */
async function fillUp(f: Fixture, accountId: string, room: bigint): Promise<void> {
  if (!(await f.ledger.getAccount('mint')))
    await f.ledger.createAccount({ id: 'mint', kind: 'system', name: 'mint', allowNegative: true }).durable;
  const amount = MAX_MSAT - room - bal(f, accountId);
  await f.ledger.transfer({
    debitAccountId: 'mint',
    creditAccountId: accountId,
    amount: msat(amount),
    code: 'test',
  }).durable;
}

/** Hold invoices on the fake node: `pay` makes the HTLC arrive (accepted), as LND would report it. */
function holdInvoices(ln: FakeLightning, beforeSettle: () => Promise<void> = async () => undefined) {
  const watchers = new Map<string, (i: Invoice) => void>();
  let settles = 0;
  Object.assign(ln, {
    createHoldInvoice: async (args: CreateHoldInvoiceArgs): Promise<Invoice> => {
      const inv: Invoice = {
        paymentHash: args.paymentHash,
        request: `lnbcrthold${args.paymentHash}`,
        description: args.description ?? '',
        amountMsat: args.amountMsat,
        receivedMsat: msat(0),
        state: 'open',
        isKeysend: false,
        createdAt: new Date(0),
        expiresAt: new Date(3600_000),
        cltvDelta: args.cltvDelta ?? 80,
        addIndex: ln.invoices.size + 1,
        settleIndex: 0,
        htlcs: [],
      };
      ln.invoices.set(args.paymentHash, inv);
      return { ...inv };
    },
    settleHoldInvoice: async (preimage: string): Promise<void> => {
      await beforeSettle();
      settles += 1;
      ln.settle(paymentHashOf(preimage));
    },
    watchInvoice: (hash: string, onUpdate: (i: Invoice) => void) => {
      watchers.set(hash, onUpdate);
      return { close: () => watchers.delete(hash) };
    },
  });
  return {
    pay: (hash: string) => {
      const inv = ln.invoices.get(hash)!;
      inv.state = 'accepted';
      inv.receivedMsat = inv.amountMsat;
      watchers.get(hash)?.({ ...inv });
    },
    state: (hash: string) => ln.invoices.get(hash)?.state,
    settles: () => settles,
  };
}

describe('escrow release against the balance ceiling', () => {
  it('account funding: a payee that cannot take the amount refuses the release (409) and the escrow stays refundable', async () => {
    const f = await escrowFixture();
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: AMOUNT,
      condition: { type: 'approval' },
      funding: 'account',
    });
    await fillUp(f, 'payee', 100_000n);
    await expect(f.escrow.approve(e.id, payer)).rejects.toMatchObject({
      code: 'BALANCE_LIMIT_EXCEEDED',
      status: 409,
    });
    expect(await f.escrow.get(e.id)).toMatchObject({ state: 'funded' });
    expect(f.ledger.getTransferSync(`escrow:${e.id}`)?.state).toBe('pending');
    expect(bal(f, ESCROW_ACCOUNT)).toBe(0n);
    // Nothing was stranded: the payee can still give the money back to the payer.
    expect(await f.escrow.cancel(e.id, payee, 'payee_full')).toMatchObject({ state: 'refunded' });
    expect([bal(f, 'payer'), bal(f, ESCROW_ACCOUNT)]).toEqual([1_000_000n, 0n]);
  });

  it('account funding: once the payee has room again, the release goes through', async () => {
    const f = await escrowFixture();
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: AMOUNT,
      condition: { type: 'approval' },
      funding: 'account',
    });
    await fillUp(f, 'payee', 100_000n);
    await expect(f.escrow.approve(e.id, payer)).rejects.toMatchObject({ code: 'BALANCE_LIMIT_EXCEEDED' });
    await f.ledger.transfer({
      debitAccountId: 'payee',
      creditAccountId: 'mint',
      amount: AMOUNT,
      code: 'test',
    }).durable;
    expect(await f.escrow.approve(e.id, payer)).toMatchObject({ state: 'released' });
    expect([bal(f, 'payer'), bal(f, ESCROW_ACCOUNT)]).toEqual([700_000n, 0n]);
    expect(bal(f, 'payee')).toBe(MAX_MSAT - 100_000n);
  });

  it('Lightning funding: the release is refused before the HTLC is settled, and the escrow can still be refunded', async () => {
    const f = await escrowFixture();
    const ln = holdInvoices(f.lightning);
    // The hold-invoice methods are in place now: a service started after this uses them.
    const escrow = await f.restart(f.escrow);
    const e = await escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: AMOUNT,
      condition: { type: 'approval' },
    });
    ln.pay(e.paymentHash);
    await fillUp(f, 'payee', 100_000n);
    const lightningBefore = bal(f, LIGHTNING_ACCOUNT);
    await expect(escrow.approve(e.id, payer)).rejects.toMatchObject({
      code: 'BALANCE_LIMIT_EXCEEDED',
      status: 409,
    });
    expect(await escrow.get(e.id)).toMatchObject({ state: 'funded' });
    expect([ln.settles(), ln.state(e.paymentHash)]).toEqual([0, 'accepted']);
    expect(await escrow.cancel(e.id, payee, 'payee_full')).toMatchObject({ state: 'refunded' });
    expect(ln.state(e.paymentHash)).toBe('canceled');
    expect(bal(f, LIGHTNING_ACCOUNT)).toBe(lightningBefore);
    escrow.stop();
  });

  it('Lightning funding: money settled while the payee filled up is held in sys:escrow, survives a restart and is released once the payee has room', async () => {
    const f = await escrowFixture();
    // Another credit reaches the payee while LND settles the HTLC.
    const ln = holdInvoices(f.lightning, () => fillUp(f, 'payee', 100_000n));
    const escrow = await f.restart(f.escrow);
    const e = await escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: AMOUNT,
      condition: { type: 'approval' },
    });
    ln.pay(e.paymentHash);
    const lightningBefore = bal(f, LIGHTNING_ACCOUNT);
    await expect(escrow.approve(e.id, payer)).rejects.toMatchObject({ code: 'BALANCE_LIMIT_EXCEEDED' });
    expect(ln.state(e.paymentHash)).toBe('settled');
    // The settled money is booked, not lost: it waits in sys:escrow.
    expect(await escrow.get(e.id)).toMatchObject({ state: 'releasing' });
    expect([bal(f, ESCROW_ACCOUNT), bal(f, LIGHTNING_ACCOUNT)]).toEqual([AMOUNT, lightningBefore - AMOUNT]);

    // A restart retries the release: it fails again (no room), without crashing or booking twice.
    const restarted = await f.restart(escrow);
    expect(await restarted.get(e.id)).toMatchObject({ state: 'releasing' });
    expect(bal(f, ESCROW_ACCOUNT)).toBe(AMOUNT);

    await f.ledger.transfer({
      debitAccountId: 'payee',
      creditAccountId: 'mint',
      amount: AMOUNT,
      code: 'test',
    }).durable;
    await (restarted as unknown as { sweepReleasing(): Promise<void> }).sweepReleasing();
    expect(await restarted.get(e.id)).toMatchObject({ state: 'released' });
    expect([bal(f, ESCROW_ACCOUNT), bal(f, LIGHTNING_ACCOUNT)]).toEqual([0n, lightningBefore - AMOUNT]);
    expect(bal(f, 'payee')).toBe(MAX_MSAT - 100_000n);
    expect(ln.settles()).toBe(1);
    restarted.stop();
  });
});
