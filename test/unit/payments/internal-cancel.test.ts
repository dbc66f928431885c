import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { LightningError } from '../../../src/lightning/errors.js';
import type { AccountEvent } from '../../../src/payments/types.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const down = () => new LightningError('LN_UNAVAILABLE', 'lnd is unreachable');

/** Account a pays b's invoice internally while LND refuses every cancel. */
async function paidInternallyWhileLndIsDown(store = new MemoryLedgerStore()) {
  const f = await paymentsFixture({}, store);
  await f.account('a', 100_000n);
  await f.account('b', 0n);
  const inv = await f.service.createInvoice('b', { amountMsat: msat(7_000) });
  f.lightning.cancelFailure = down();
  expect(await f.service.pay('a', { request: inv.request })).toMatchObject({
    kind: 'internal',
    status: 'succeeded',
  });
  await f.service.reconcile({ full: false }); // a retry while LND is still down changes nothing
  return { f, store, hash: inv.paymentHash };
}

describe('canceling internally paid invoices in LND', () => {
  it('keeps the intent with the settlement until LND confirms the cancel, across a restart', async () => {
    const { f, store, hash } = await paidInternallyWhileLndIsDown();
    expect(f.lightning.invoices.get(hash)!.state).toBe('open');
    expect(store.records.has(`invcancel!${hash}`)).toBe(true);

    f.lightning.cancelFailure = undefined;
    const restarted = await paymentsFixture({}, store, f.lightning); // start() reconciles
    expect(f.lightning.invoices.get(hash)!.state).toBe('canceled');
    expect(store.records.has(`invcancel!${hash}`)).toBe(false); // bounded: gone once done
    expect(balanceOf(await restarted.ledger.requireAccount('b'))).toBe(7_000n);
    // Confirmed final in LND: later full reconciliations do not look it up again.
    const looked: string[] = [];
    const lookup = f.lightning.lookupInvoice.bind(f.lightning);
    f.lightning.lookupInvoice = (h) => (looked.push(h), lookup(h));
    await restarted.service.reconcile({ full: true });
    expect(looked).not.toContain(hash);
  });

  it('a cancel that fails to complete holds no other intent (nor the reconciliation) up', async () => {
    const { f, store, hash: first } = await paidInternallyWhileLndIsDown();
    const inv = await f.service.createInvoice('b', { amountMsat: msat(3_000) });
    await f.service.pay('a', { request: inv.request });
    f.lightning.cancelFailure = undefined;
    const put = f.ledger.putRecords.bind(f.ledger);
    f.ledger.putRecords = (records) =>
      records.some((r) => r.key === `invcancel!${first}`)
        ? Promise.reject(new Error('disk full'))
        : put(records);
    await expect(f.service.reconcile({ full: false })).resolves.toBeDefined();
    expect(store.records.has(`invcancel!${inv.paymentHash}`)).toBe(false);
    expect(store.records.has(`invcancel!${first}`)).toBe(true); // kept for the next pass
  });

  it('retries the cancel at every periodic reconciliation', async () => {
    const { f, store, hash } = await paidInternallyWhileLndIsDown();
    f.lightning.cancelFailure = undefined;
    await f.service.reconcile({ full: false });
    expect(f.lightning.invoices.get(hash)!.state).toBe('canceled');
    expect(store.records.has(`invcancel!${hash}`)).toBe(false);
  });

  it('cancels, at a full reconciliation, an internally settled invoice still open in LND without an intent', async () => {
    const { f, store, hash } = await paidInternallyWhileLndIsDown();
    store.records.delete(`invcancel!${hash}`); // as written before intents existed
    f.lightning.cancelFailure = undefined;
    const restarted = await paymentsFixture({}, store, f.lightning);
    await restarted.service.reconcile({ full: true });
    expect(f.lightning.invoices.get(hash)!.state).toBe('canceled');
    expect(store.records.has(`invcancel!${hash}`)).toBe(false);
  });

  it('books an outside payment that beat the cancel to the operator once, never to the payee a second time', async () => {
    const { f, store, hash } = await paidInternallyWhileLndIsDown();
    const alerts: AccountEvent[] = [];
    f.events.subscribe('b', (e) => e.type === 'alert' && alerts.push(e));
    const operatorBefore = balanceOf(await f.ledger.requireAccount(OPERATOR_ACCOUNT));
    const settled = f.lightning.settle(hash); // an outside payer got there first
    f.lightning.cancelFailure = undefined;
    await f.service.onInvoice(settled); // the subscription's delivery
    await f.service.reconcile({ full: true }); // the cancel is refused: LND says settled
    await f.service.onInvoice(settled);
    expect(balanceOf(await f.ledger.requireAccount('b'))).toBe(7_000n);
    expect(balanceOf(await f.ledger.requireAccount(OPERATOR_ACCOUNT))).toBe(operatorBefore + 7_000n);
    expect(alerts).toEqual([expect.objectContaining({ code: 'INVOICE_PAID_TWICE', accountId: 'b' })]);
    expect(store.records.has(`invcancel!${hash}`)).toBe(false);
    // The record keeps the internal settlement, and a restart books nothing again.
    const restarted = await paymentsFixture({}, store, f.lightning);
    await restarted.service.onInvoice(settled);
    expect(await restarted.service.getInvoice(hash)).toMatchObject({
      state: 'settled',
      settledVia: 'internal',
      lightningReceivedMsat: 7_000n,
    });
    expect(balanceOf(await restarted.ledger.requireAccount('b'))).toBe(7_000n);
    expect(balanceOf(await restarted.ledger.requireAccount(OPERATOR_ACCOUNT))).toBe(operatorBefore + 7_000n);
  });
});
