import { pino } from 'pino';
import { msat } from '../../../src/domain/msat.js';
import type { LedgerWrite } from '../../../src/ledger/store.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import { ServiceRegistry } from '../../../src/market/registry.js';
import { TaskMarket, type TaskEvent } from '../../../src/market/tasks.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import { escrowFixture } from '../escrow/fixture.js';

/**
 * A task market over the escrow fixture; `payee` advertises vision and labelling. Over the `store`
 * of an earlier fixture, it is that gateway restarted (e.g. after a crash).
 */
export async function marketFixture(store = new MemoryLedgerStore()) {
  const f = await escrowFixture({}, store);
  const registry = new ServiceRegistry(f.ledger);
  await registry.load();
  const taskEvents: { accountId: string; event: TaskEvent }[] = [];
  const market = new TaskMarket(
    f.ledger,
    f.escrow,
    registry,
    (accountId, event) => taskEvents.push({ accountId, event }),
    pino({ level: 'silent' }),
    () => f.ledger.accountNow('payer')!.createdAt + clock.offset,
  );
  const clock = { offset: 0 };
  await market.start();
  market.stop();
  await registry.advertise('payee', {
    title: 'image labelling',
    description: 'labels images',
    capabilities: ['vision', 'labelling'],
    priceMsat: msat(1000),
    unit: 'task',
  });
  const bal = (id: string) => balanceOf(f.ledger.accountNow(id)!);
  const avail = (id: string) => availableOf(f.ledger.accountNow(id)!);
  return { ...f, registry, market, taskEvents, clock, bal, avail };
}

/** A disk that fails the write after the one that locked an escrow's amount (the gateway dies there). */
export class CrashAfterLock extends MemoryLedgerStore {
  crashed = false;
  override async commit(writes: LedgerWrite[]): Promise<void> {
    await super.commit(writes);
    if (!this.crashed && writes.some((w) => w.type === 'transfer' && w.transfer.code === 'escrow'))
      this.failNext = this.crashed = true;
  }
}
