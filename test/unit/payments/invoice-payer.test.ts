import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

describe('the payer of an internally settled invoice', () => {
  it('is on disk with the settlement, hidden from the payee, and absent for Lightning payments', async () => {
    const store = new MemoryLedgerStore();
    const f = await paymentsFixture({}, store);
    await f.account('payer', 100_000n);
    await f.account('payee', 0n);
    const inv = await f.service.createInvoice('payee', { amountMsat: msat(7_000) });
    expect(await f.service.invoicePayer(inv.paymentHash)).toBeUndefined(); // not paid yet
    await f.service.pay('payer', { request: inv.request });
    expect(await f.service.invoicePayer(inv.paymentHash)).toBe('payer');
    expect(await f.service.getInvoice(inv.paymentHash)).not.toHaveProperty('payerAccountId');
    // Read back from disk after a restart.
    const restarted = await paymentsFixture({}, store, f.lightning);
    expect(await restarted.service.invoicePayer(inv.paymentHash)).toBe('payer');

    const outside = await f.service.createInvoice('payee', { amountMsat: msat(2_000) });
    await f.service.onInvoice(f.lightning.settle(outside.paymentHash));
    expect(await f.service.getInvoice(outside.paymentHash)).toMatchObject({ state: 'settled' });
    expect(await f.service.invoicePayer(outside.paymentHash)).toBeUndefined();
  });
});
