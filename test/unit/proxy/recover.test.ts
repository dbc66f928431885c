import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { recoverInterruptedUsage } from '../../../src/proxy/server.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

describe('recoverInterruptedUsage', () => {
  it('releases the metered reservations a crash left open, and nothing else, after a restart', async () => {
    const store = new MemoryLedgerStore();
    const ledger = await Ledger.open(store);
    for (const id of ['sys:operator', 'l402:t', 'svc:s'])
      ledger.createAccount({ id, kind: 'system', name: id, allowNegative: id === 'sys:operator' });
    await ledger.transfer({
      debitAccountId: 'sys:operator',
      creditAccountId: 'l402:t',
      amount: msat(1000),
      code: 'invoice',
    }).durable;
    const usage = ledger.transfer({
      debitAccountId: 'l402:t',
      creditAccountId: 'svc:s',
      amount: msat(300),
      code: 'l402_usage',
      pending: true,
    });
    const other = ledger.transfer({
      debitAccountId: 'l402:t',
      creditAccountId: 'svc:s',
      amount: msat(200),
      code: 'escrow',
      pending: true,
    });
    await Promise.all([usage.durable, other.durable]);

    const restarted = await Ledger.open(store); // the process died mid-request
    expect(await recoverInterruptedUsage(restarted)).toBe(1);
    expect(restarted.getTransferSync(usage.value.id)?.state).toBe('voided');
    expect(restarted.getTransferSync(other.value.id)?.state).toBe('pending');
    expect(await recoverInterruptedUsage(restarted)).toBe(0);
  });
});
