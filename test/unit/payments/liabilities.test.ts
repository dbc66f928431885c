import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { balanceOf, isGatewayAccount } from '../../../src/ledger/types.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

describe('liabilities', () => {
  it("match every account's balance and pending debits without reading every account", async () => {
    const f = await paymentsFixture();
    const ids = Array.from({ length: 2500 }, (_, i) => `agent-${String(i).padStart(4, '0')}`);
    await f.ledger.ensure({ accounts: ids });
    for (const id of ids) f.ledger.createAccount({ id, kind: 'agent', name: id });
    await Promise.all(
      ids.map(
        (id, i) =>
          f.ledger.transfer({
            debitAccountId: OPERATOR_ACCOUNT,
            creditAccountId: id,
            amount: msat(1000 + i),
            code: 'funding',
          }).durable,
      ),
    );
    // Money moved between accounts, a payment left pending (reserved), one that failed.
    await f.ledger.transfer({
      debitAccountId: ids[1]!,
      creditAccountId: ids[2]!,
      amount: msat(7),
      code: 'transfer',
    }).durable;
    await f.account('payer', 500_000n);
    f.lightning.behaviour = (hash) => ({ status: 'pending', paymentHash: hash });
    await f.service.pay('payer', {
      request: fakeRequest({ amountMsat: 20_000n }).request,
      maxFeeMsat: msat(1000),
    });
    f.lightning.behaviour = (hash) => ({
      status: 'failed',
      paymentHash: hash,
      reason: 'NO_ROUTE',
      message: 'x',
    });
    await f.service.pay('payer', {
      request: fakeRequest({ amountMsat: 30_000n }).request,
      maxFeeMsat: msat(1000),
    });

    // What a scan of every account gives.
    let owed = 0n;
    let pendingOut = 0n;
    for (let after: string | undefined; ;) {
      const page = await f.ledger.listAccounts({ limit: 1000, ...(after !== undefined ? { after } : {}) });
      for (const a of page)
        if (!isGatewayAccount(a.id, a.kind)) {
          owed += balanceOf(a);
          pendingOut += a.debitsPending;
        }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.id;
    }
    expect(pendingOut).toBe(21_000n);

    let read = 0;
    const list = f.ledger.listAccounts.bind(f.ledger);
    f.ledger.listAccounts = async (o) => {
      const page = await list(o);
      read += page.length;
      return page;
    };
    const l = await f.service.liabilities();
    expect({ owed: l.accountsMsat, pendingOut: l.pendingOutMsat }).toEqual({
      owed: owed.toString(),
      pendingOut: pendingOut.toString(),
    });
    // The gateway's own accounts only, not the 2,501 others.
    expect(read).toBeLessThan(100);
  });
});
