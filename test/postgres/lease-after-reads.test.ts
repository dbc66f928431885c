import { afterEach, describe, expect, inject, it } from 'vitest';
import { msat } from '../../src/domain/msat.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { PostgresLedgerStore } from '../../src/storage/postgres/postgres-ledger-store.js';
import { createTestDatabase } from '../support/postgres.js';

/**
 * `ensure({ spend })` on a shared store takes the leases first, then reads the other accounts; a
 * lease another instance asked for may be handed over while those reads wait on the database
 * (its grace runs out meanwhile). `ensure` then takes it again: the caller's synchronous step has
 * the lease. Before, it resolved without it, and the L402 proxy's aggregated charge, written at
 * the next batch, failed there with LEASE_NOT_HELD (an unhandled rejection that ended the
 * instance; found by bench/l402-instances.ts, one credential used through two instances).
 */
const open: Ledger[] = [];
async function instance(url: string): Promise<{ ledger: Ledger; store: PostgresLedgerStore }> {
  const store = await PostgresLedgerStore.open(url, { max: 2 });
  const ledger = await Ledger.open(store, { leases: { tickMs: 10, graceMs: 10, idleMs: 1000 } });
  open.push(ledger);
  return { ledger, store };
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

describe('ensure({ spend }) on a store shared by several instances', () => {
  it('holds the leases when it resolves, even if one was handed over during its reads', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'lease_after_reads');
    const { ledger: one, store } = await instance(url);
    const { ledger: two } = await instance(url);
    await one.ensure({ accounts: ['sys', 'alice', 'out'] });
    one.createAccount({ id: 'sys', kind: 'system', name: 'sys', allowNegative: true });
    one.createAccount({ id: 'out', kind: 'system', name: 'out' });
    await one.createAccount({ id: 'alice', kind: 'agent', name: 'alice' }).durable;
    await one.transfer({ debitAccountId: 'sys', creditAccountId: 'alice', amount: msat(100n), code: 'f' })
      .durable;
    await one.ensure({ spend: ['alice'], accounts: ['out'] });

    // The other instance asks for alice's lease...
    const twoTook = two.ensure({ spend: ['alice'] });
    // ...while this one's next ensure waits on a slow read of the other account.
    const getAccounts = store.getAccounts.bind(store);
    let slow = 3;
    store.getAccounts = async (ids) => {
      if (slow-- > 0) await new Promise((r) => setTimeout(r, 200));
      return getAccounts(ids);
    };
    await one.ensure({ spend: ['alice'], accounts: ['out'] });
    await twoTook; // it had the lease in between
    expect(one.spendable('alice', ['out'])).toBe(true);
    await one.transfer({ debitAccountId: 'alice', creditAccountId: 'out', amount: msat(30n), code: 'pay' })
      .durable;
  });
});
