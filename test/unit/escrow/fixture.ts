import { pino } from 'pino';
import { EscrowService, type EscrowEvent, type EscrowOptions } from '../../../src/escrow/service.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

/**
 * An escrow service over the payments fixture (in-memory ledger, fake Lightning), clock controlled.
 * Over a `store` that already holds the accounts (a reopened one, as after a crash) nothing is funded again.
 */
export async function escrowFixture(options: EscrowOptions = {}, store = new MemoryLedgerStore()) {
  let now = 1_000_000;
  const f = await paymentsFixture({ now: () => now }, store);
  const events: { accountId: string; event: EscrowEvent }[] = [];
  const open = async () => {
    const service = new EscrowService(
      f.ledger,
      f.lightning,
      f.service,
      (accountId, event) => events.push({ accountId, event }),
      pino({ level: 'silent' }),
      { now: () => now, blockPollMs: 3600_000, ...options },
    );
    await service.start();
    return service;
  };
  const escrow = await open();
  if (!(await f.ledger.getAccount('payer'))) {
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    await f.account('other', 0n);
  }
  return {
    ...f,
    escrow,
    events,
    /** A new service over the same ledger and records, as after a restart (the old one stopped). */
    restart: async (old: EscrowService) => {
      old.stop();
      return open();
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}
