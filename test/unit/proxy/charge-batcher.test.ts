import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { ChargeBatcher } from '../../../src/proxy/charge-batcher.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

async function setup() {
  const store = new MemoryLedgerStore();
  const ledger = await Ledger.open(store);
  ledger.createAccount({ id: 'w', kind: 'system', name: 'w', allowNegative: true });
  ledger.createAccount({ id: 'cred', kind: 'credential', name: 'c' });
  ledger.createAccount({ id: 'rev', kind: 'service', name: 'r' });
  await ledger.transfer({ debitAccountId: 'w', creditAccountId: 'cred', amount: msat(100), code: 'f' })
    .durable;
  return { ledger, store, batcher: new ChargeBatcher(ledger) };
}

describe('ChargeBatcher', () => {
  it('turns concurrent charges into one durable transfer, and counts them until written', async () => {
    const { ledger, store, batcher } = await setup();
    const before = store.commits;
    const all = Array.from({ length: 50 }, () => batcher.charge('cred', 'rev', 1n).durable);
    expect(batcher.unwritten('cred')).toBe(50n);
    await Promise.all(all);
    expect(batcher.unwritten('cred')).toBe(0n);
    expect(balanceOf(await ledger.requireAccount('cred'))).toBe(50n);
    expect(balanceOf(await ledger.requireAccount('rev'))).toBe(50n);
    expect(store.commits - before).toBe(1);
    expect([...store.transfers.values()].filter((t) => t.code === 'l402_requests')).toHaveLength(1);
  });

  it('tells without a wait whether a charge is durable: done only once its batch is written', async () => {
    const { batcher } = await setup();
    const first = batcher.charge('cred', 'rev', 1n);
    const same = batcher.charge('cred', 'rev', 1n);
    expect(same).toBe(first); // one state for the batch's charges: nothing allocated per request
    expect(first.done).toBe(false);
    await first.durable;
    expect(first.done).toBe(true);
    const next = batcher.charge('cred', 'rev', 1n);
    expect(next.done).toBe(false);
    await next.durable;
    expect(next.done).toBe(true);
  });

  it('refunds a durable charge with a durable transfer of its own, while other charges are pending', async () => {
    const { ledger, batcher } = await setup();
    await batcher.charge('cred', 'rev', 10n).durable;
    const pending = batcher.charge('cred', 'rev', 7n).durable;
    expect(batcher.unwritten('cred')).toBe(7n);
    await batcher.refund('cred', 'rev', 10n);
    await pending;
    expect(balanceOf(await ledger.requireAccount('cred'))).toBe(93n);
    expect(balanceOf(await ledger.requireAccount('rev'))).toBe(7n);
  });

  it('writes what is pending when it closes', async () => {
    const { ledger, batcher } = await setup();
    const pending = batcher.charge('cred', 'rev', 5n).durable;
    batcher.close();
    await pending;
    expect(balanceOf(await ledger.requireAccount('cred'))).toBe(95n);
  });

  it('rejects the waiting requests when the credit is gone by write time', async () => {
    const { batcher } = await setup();
    await expect(batcher.charge('cred', 'rev', 101n).durable).rejects.toMatchObject({
      code: 'INSUFFICIENT_FUNDS',
    });
  });
});
