import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { EscrowService } from '../../../src/escrow/service.js';
import type { LedgerChange } from '../../../src/ledger/ledger.js';
import { EventBus } from '../../../src/payments/events.js';
import type { AccountEvent } from '../../../src/payments/types.js';
import { ChargeBatcher } from '../../../src/proxy/charge-batcher.js';
import { accountsApp } from '../../support/payments-fixture.js';
import { closingFixtures, OPEN, silent, type StreamsFixture } from '../streams/support.js';

const fixture = closingFixtures();

type BalanceEvent = Extract<AccountEvent, { type: 'balance' }>;

/** The balance events an account's event stream receives from now on. */
function watch(f: StreamsFixture, accountId: string): BalanceEvent[] {
  const seen: BalanceEvent[] = [];
  f.bus.subscribe(accountId, (e) => {
    if (e.type === 'balance') seen.push(e);
  });
  return seen;
}

const figures = (accountId: string, balance: bigint, available = balance): BalanceEvent => ({
  type: 'balance',
  accountId,
  balanceMsat: balance.toString(),
  availableMsat: available.toString(),
});

describe('balance events, derived from the ledger’s durable batches', () => {
  it('operator funding through the API', async () => {
    const f = await fixture();
    await f.account('a', 0n);
    const seen = watch(f, 'a');
    const app = await accountsApp({ ...f, events: f.bus }, 'operator-key-for-balance-events-0123456789');
    const res = await app.inject({
      method: 'POST',
      url: '/v1/accounts/a/fund',
      headers: { authorization: 'Bearer operator-key-for-balance-events-0123456789' },
      payload: { amountMsat: '5000' },
    });
    expect(res.statusCode).toBe(200);
    expect(seen).toEqual([figures('a', 5_000n)]);
    await app.close();
  });

  it('an escrow on account balance: the lock, then the release', async () => {
    const f = await fixture();
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const escrow = new EscrowService(
      f.ledger,
      f.lightning,
      f.service,
      (accountId, event) => f.bus.publish(accountId, event),
      silent,
      { now: () => f.clock.now(), blockPollMs: 3600_000 },
    );
    await escrow.start();
    const payer = watch(f, 'payer');
    const payee = watch(f, 'payee');
    const e = await escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(300_000),
      condition: { type: 'approval' },
      funding: 'account',
    });
    expect(payer).toEqual([figures('payer', 1_000_000n, 700_000n)]);
    await escrow.approve(e.id, { type: 'account', accountId: 'payer' });
    expect(payer.at(-1)).toEqual(figures('payer', 700_000n));
    expect(payee).toEqual([figures('payee', 300_000n)]);
    escrow.stop();
  });

  it('a local stream: the chunk reserved, then every second paid', async () => {
    const f = await fixture();
    await f.account('payer', 1_000_000n, OPEN);
    await f.account('payee', 0n);
    const payer = watch(f, 'payer');
    const payee = watch(f, 'payee');
    await f.streams.create('payer', { payee: { accountId: 'payee' }, rateMsat: msat(1000) });
    expect(payer).toEqual([figures('payer', 1_000_000n, 940_000n)]);
    expect(payee).toEqual([figures('payee', 0n)]); // a pending credit: nothing spendable yet
    await f.clock.advance(1000);
    expect(payer.at(-1)).toEqual(figures('payer', 999_000n, 940_000n));
    expect(payee.at(-1)).toEqual(figures('payee', 1_000n));
  });

  it('proxy charges: many charges in one batch give one event per account', async () => {
    const f = await fixture();
    await f.account('cred', 100n);
    await f.account('rev', 0n);
    const cred = watch(f, 'cred');
    const rev = watch(f, 'rev');
    const batcher = new ChargeBatcher(f.ledger);
    await Promise.all(Array.from({ length: 50 }, () => batcher.charge('cred', 'rev', 1n).durable));
    expect(cred).toEqual([figures('cred', 50n)]);
    expect(rev).toEqual([figures('rev', 50n)]);
    batcher.close();
  });

  it('transfers, coalesced per batch, and credited invoices', async () => {
    const f = await fixture();
    await f.account('a', 10_000n);
    await f.account('b', 0n);
    const a = watch(f, 'a');
    const b = watch(f, 'b');
    await Promise.all([
      f.service.transfer('a', 'b', msat(1_000), 'one'),
      f.service.transfer('a', 'b', msat(2_000), 'two'),
    ]);
    expect(a).toEqual([figures('a', 7_000n)]);
    expect(b).toEqual([figures('b', 3_000n)]);
    const inv = await f.service.createInvoice('b', { amountMsat: msat(4_000) });
    await f.service.onInvoice(f.lightning.settle(inv.paymentHash));
    expect(b.at(-1)).toEqual(figures('b', 7_000n));
    expect(b).toHaveLength(2);
  });

  it('the ledger publishes one change per durable batch that moved funds, and none for other batches', async () => {
    const f = await fixture();
    const changes: LedgerChange[] = [];
    const off = f.ledger.on('change', (c) => changes.push(c));
    await f.ledger.createAccount({ id: 'quiet', kind: 'agent', name: 'quiet' }).durable;
    await f.ledger.setFrozen('quiet', true, 'test').durable;
    expect(changes).toEqual([]);
    await f.ledger.setFrozen('quiet', false, 'test').durable;
    await f.account('x', 0n);
    f.ledger.transfer({ debitAccountId: 'sys:operator', creditAccountId: 'x', amount: msat(5), code: 't' });
    await f.ledger.transfer({ debitAccountId: 'x', creditAccountId: 'quiet', amount: msat(2), code: 't' })
      .durable;
    expect(changes).toHaveLength(1);
    expect(changes[0]!.accounts.map((acc) => [acc.id, acc.creditsPosted - acc.debitsPosted])).toEqual(
      expect.arrayContaining([
        ['sys:operator', -5n],
        ['x', 3n],
        ['quiet', 2n],
      ]),
    );
    off();
  });

  it('are built only for accounts someone listens to', () => {
    const bus = new EventBus();
    const offTyped = bus.subscribeAll(() => undefined, ['invoice']);
    expect(bus.wants('a', 'balance')).toBe(false);
    expect(bus.wants('a', 'invoice')).toBe(true);
    const off = bus.subscribe('a', () => undefined);
    expect(bus.wants('a', 'balance')).toBe(true);
    expect(bus.wants('b', 'balance')).toBe(false);
    off();
    offTyped();
    offTyped();
    expect(bus.wants('a', 'invoice')).toBe(false);
    const offAll = bus.subscribeAll(() => undefined);
    expect(bus.wants('b', 'balance')).toBe(true);
    offAll();
    expect(bus.wants('b', 'balance')).toBe(false);
  });
});
