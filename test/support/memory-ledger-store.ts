import type { LedgerSnapshot, LedgerStore, LedgerWrite } from '../../src/ledger/store.js';
import type { Account, JournalEntry, Transfer } from '../../src/ledger/types.js';

/** In-memory LedgerStore for unit tests; copies on the way in and out like a real store. */
export class MemoryLedgerStore implements LedgerStore {
  accounts = new Map<string, Account>();
  transfers = new Map<string, Transfer>();
  idempotency = new Map<string, { transferId: string; fingerprint: string }>();
  entries: JournalEntry[] = [];
  commits = 0;
  failNext = false;

  async load(since: number): Promise<LedgerSnapshot> {
    return {
      accounts: [...this.accounts.values()].map((a) => ({ ...a })),
      transfers: [...this.transfers.values()]
        .filter((t) => t.state === 'pending' || t.createdAt >= since)
        .map((t) => ({ ...t })),
      idempotency: [...this.idempotency.entries()].map(([key, v]) => ({ key, ...v })),
      lastSeq: this.entries.length ? this.entries[this.entries.length - 1]!.seq : 0,
    };
  }

  async commit(writes: LedgerWrite[]): Promise<void> {
    await Promise.resolve();
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    this.commits += 1;
    for (const w of writes) {
      if (w.type === 'account') this.accounts.set(w.account.id, { ...w.account });
      else if (w.type === 'transfer') this.transfers.set(w.transfer.id, { ...w.transfer });
      else if (w.type === 'idempotency')
        this.idempotency.set(w.key, { transferId: w.transferId, fingerprint: w.fingerprint });
      else this.entries.push(w.entry);
    }
  }

  async getTransfer(id: string): Promise<Transfer | undefined> {
    const t = this.transfers.get(id);
    return t ? { ...t } : undefined;
  }

  async journal(accountId: string, options: { limit: number; beforeSeq?: number }): Promise<JournalEntry[]> {
    return this.entries
      .filter(
        (e) =>
          e.accountIds.includes(accountId) && (options.beforeSeq === undefined || e.seq < options.beforeSeq),
      )
      .reverse()
      .slice(0, options.limit);
  }

  async close(): Promise<void> {}
}
