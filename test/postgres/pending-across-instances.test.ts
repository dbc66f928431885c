import { afterEach, describe, expect, inject, it } from 'vitest';
import { msat } from '../../src/domain/msat.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { availableOf, balanceOf } from '../../src/ledger/types.js';
import { PostgresLedgerStore } from '../../src/storage/postgres/postgres-ledger-store.js';
import { createTestDatabase } from '../support/postgres.js';

/**
 * Pending transfers (a payment's reservation, a metered request's) on several instances of one
 * PostgreSQL database: only the holder of the debit account's lease may post, void or advance one,
 * and it reads them afresh when it takes the lease — so an instance that reserved and then lost
 * the lease (it died, or another spent from the account) leaves its reservations to the next
 * holder, and nothing is booked twice.
 */
const open: Ledger[] = [];
async function instance(url: string): Promise<Ledger> {
  const ledger = await Ledger.open(await PostgresLedgerStore.open(url, { max: 2 }), {
    // Quick hand-overs and idle give-ups, so the test does not wait on the defaults.
    leases: { tickMs: 10, graceMs: 10, idleMs: 100 },
  });
  open.push(ledger);
  return ledger;
}

async function funded(url: string): Promise<[Ledger, Ledger]> {
  const one = await instance(url);
  const two = await instance(url);
  await one.ensure({ accounts: ['sys', 'alice', 'out'] });
  one.createAccount({ id: 'sys', kind: 'system', name: 'sys', allowNegative: true });
  one.createAccount({ id: 'out', kind: 'system', name: 'out', allowNegative: true });
  await one.createAccount({ id: 'alice', kind: 'agent', name: 'alice' }).durable;
  await one.transfer({
    debitAccountId: 'sys',
    creditAccountId: 'alice',
    amount: msat(1000n),
    code: 'funding',
  }).durable;
  return [one, two];
}

async function balance(ledger: Ledger, id: string): Promise<bigint> {
  await ledger.ensure({ accounts: [id] });
  return balanceOf(ledger.accountNow(id)!);
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

describe('pending transfers on several instances of one PostgreSQL database', () => {
  it('a reservation made on one instance is posted by the next holder of the lease, once', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'pending_multi_post');
    const [one, two] = await funded(url);

    // The second instance reserves 300 of alice's 1000 (a payment in flight).
    await two.ensure({ spend: ['alice'], accounts: ['out'] });
    const reserved = two.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'out',
      amount: msat(300n),
      code: 'payment',
      pending: true,
    });
    await reserved.durable;
    const id = reserved.value.id;

    // The first takes alice's lease: it now holds the reservation, as the store has it.
    await one.ensure({ spend: ['alice'], accounts: ['out'] });
    expect(one.getTransferSync(id)).toMatchObject({ state: 'pending', amount: 300n });
    expect(one.pendingTransfers().map((t) => t.id)).toEqual([id]);
    expect(availableOf(one.accountNow('alice')!)).toBe(700n);
    // The second handed the lease over: what only the holder may change left its memory.
    expect(two.pendingTransfers()).toEqual([]);
    expect(() => two.post(id, msat(250n))).toThrow();

    await one.post(id, msat(250n)).durable;

    // Back on the second: it reads the reservation afresh with the lease — posted already.
    await two.ensure({ spend: ['alice'], accounts: ['out'], transfers: [id] });
    expect(two.getTransferSync(id)).toMatchObject({ state: 'posted', amount: 250n });
    expect(two.pendingTransfers()).toEqual([]);
    expect(() => two.void(id, 'too late')).toThrow(expect.objectContaining({ code: 'TRANSFER_NOT_PENDING' }));
    // Posting the same amount again is a replay: nothing moves.
    expect(two.post(id, msat(250n)).replayed).toBe(true);
    await two.flush();

    const fresh = await instance(url);
    expect(await balance(fresh, 'alice')).toBe(750n);
    expect(await balance(fresh, 'out')).toBe(250n);
  });

  it('an instance that does not hold the debit lease cannot post, void or advance', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'pending_multi_fence');
    const [one, two] = await funded(url);
    await one.ensure({ spend: ['alice'], accounts: ['out'] });
    const reserved = one.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'out',
      amount: msat(100n),
      code: 'payment',
      pending: true,
    });
    await reserved.durable;
    // The second instance reads the transfer (not the lease): it is pending on disk, not its own.
    await two.ensure({ transfers: [reserved.value.id], accounts: ['alice', 'out'] });
    expect(two.pendingTransfers()).toEqual([]);
    // The first keeps alice busy: the second's attempts are refused without touching anything.
    for (const attempt of [
      () => two.post(reserved.value.id),
      () => two.void(reserved.value.id),
      () => two.advance(reserved.value.id, msat(1n)),
    ])
      expect(attempt).toThrow();
    await one.void(reserved.value.id, 'failed').durable;
    const fresh = await instance(url);
    expect(await balance(fresh, 'alice')).toBe(1000n);
    expect((await fresh.getTransfer(reserved.value.id))?.state).toBe('voided');
  });

  it('a reservation advanced by one holder is continued from where it stands by the next', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'pending_multi_advance');
    const [one, two] = await funded(url);
    await one.ensure({ spend: ['alice'], accounts: ['out'] });
    const chunk = one.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'out',
      amount: msat(500n),
      code: 'stream',
      pending: true,
    });
    await one.advance(chunk.value.id, msat(120n)).durable;

    await two.ensure({ spend: ['alice'], accounts: ['out'] });
    expect(two.getTransferSync(chunk.value.id)).toMatchObject({ state: 'pending', advanced: 120n });
    await two.advance(chunk.value.id, msat(80n)).durable;
    // Voiding keeps what moved (200) and returns the rest.
    await two.void(chunk.value.id, 'stopped').durable;

    const fresh = await instance(url);
    expect(await balance(fresh, 'alice')).toBe(800n);
    expect(await fresh.getTransfer(chunk.value.id)).toMatchObject({ state: 'posted', amount: 200n });
  });

  it('a lease is not handed over while a batch preparer holds debits of the account unwritten', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'pending_multi_unwritten');
    const [one, two] = await funded(url);
    await one.ensure({ spend: ['alice'], accounts: ['out'] });
    // The charge batcher's case: requests charged in memory, summed into one transfer at the next batch.
    let charged = 0n;
    const detach = one.beforeCommit(
      () => {
        if (charged === 0n) return;
        one.transfer({
          debitAccountId: 'alice',
          creditAccountId: 'out',
          amount: msat(charged),
          code: 'l402_requests',
        });
        charged = 0n;
      },
      (id) => id === 'alice' && charged > 0n,
    );
    charged = 100n;
    let taken = false;
    const asked = two.ensure({ spend: ['alice'] }).then(() => (taken = true));
    // Many of the holder's lease ticks (10 ms) pass with the other asking: the lease stays.
    await new Promise((r) => setTimeout(r, 300));
    expect(taken).toBe(false);
    expect(one.spendable('alice')).toBe(true);
    // The batch writes the charge under the lease it was checked under, then the lease goes.
    one.wantCommit();
    await asked;
    expect(taken).toBe(true);
    expect(await balance(two, 'alice')).toBe(900n);
    detach();
  });
});
