import type { SpendRecord } from '../../src/ledger/spend-buckets.js';
import type {
  AccountSearch,
  LedgerSnapshot,
  LedgerStore,
  LedgerWrite,
  StoredAccount,
  StoredKey,
  StoredRecord,
} from '../../src/ledger/store.js';
import type { Account, JournalEntry, Transfer } from '../../src/ledger/types.js';

/** In-memory LedgerStore for unit tests; copies on the way in and out like a real store. */
export class MemoryLedgerStore implements LedgerStore {
  accounts = new Map<string, Account>();
  spend = new Map<string, SpendRecord>();
  transfers = new Map<string, Transfer>();
  idempotency = new Map<string, StoredKey>();
  /**
   * Keys of `idempotency` written before the time index (a test puts them there): their record
   * has no time (`at` is their transfer's) and no index entry until `idempotency_indexed`.
   */
  unindexed = new Set<string>();
  /** Reads of accounts, transfers and keys, counted (what `load` and `ensure` cost). */
  reads = 0;
  /** Runs after each read, before its answer is returned (tests interleave work with a read). */
  beforeRead: (() => Promise<void> | void) | undefined;
  entries: JournalEntry[] = [];
  records = new Map<string, string>();
  commits = 0;
  failNext = false;

  async load(): Promise<LedgerSnapshot> {
    return {
      pending: [...this.transfers.values()].filter((t) => t.state === 'pending').map((t) => ({ ...t })),
      lastSeq: this.entries.length ? this.entries[this.entries.length - 1]!.seq : 0,
      empty: this.accounts.size === 0,
    };
  }

  async transfersCreatedSince(
    since: number,
    options: { after?: string; limit: number },
  ): Promise<{ transfers: Transfer[]; next?: string }> {
    const key = (t: Transfer) => `${String(t.createdAt).padStart(15, '0')}!${t.id}`;
    const all = [...this.transfers.values()]
      .filter((t) => t.createdAt >= since && (options.after === undefined || key(t) > options.after))
      .sort((a, b) => (key(a) < key(b) ? -1 : 1))
      .slice(0, options.limit);
    await this.read(all.length);
    const last = all[all.length - 1];
    return {
      transfers: all.map((t) => ({ ...t })),
      ...(all.length === options.limit && last ? { next: key(last) } : {}),
    };
  }

  private async read(n: number): Promise<void> {
    this.reads += n;
    await this.beforeRead?.();
  }

  private stored(id: string): StoredAccount | undefined {
    const a = this.accounts.get(id);
    const spend = this.spend.get(id);
    return a ? { account: { ...a }, spend: spend ? structuredClone(spend) : undefined } : undefined;
  }

  async getAccounts(ids: readonly string[]): Promise<(StoredAccount | undefined)[]> {
    const out = ids.map((id) => this.stored(id));
    await this.read(ids.length);
    return out;
  }

  async searchAccounts(options: AccountSearch): Promise<{ accounts: StoredAccount[]; next?: string }> {
    await this.read(1);
    const prefix = options.by === 'name' ? options.prefix.toLowerCase() : options.prefix;
    const keyOf = (a: Account) => (options.by === 'name' ? `${a.name.toLowerCase()}\u0000${a.id}` : a.id);
    const page = [...this.accounts.values()]
      .map((a) => ({ key: keyOf(a), id: a.id }))
      .filter((k) => k.key.startsWith(prefix) && (options.after === undefined || k.key > options.after))
      .sort((a, b) => (a.key < b.key ? -1 : 1))
      .slice(0, options.limit);
    const last = page[page.length - 1];
    return {
      accounts: page.map((k) => this.stored(k.id)!),
      ...(page.length === options.limit && last ? { next: last.key } : {}),
    };
  }

  async frozenAccounts(options: { after?: string; limit: number }): Promise<StoredAccount[]> {
    await this.read(1);
    return [...this.accounts.values()]
      .filter((a) => a.frozen && (options.after === undefined || a.id > options.after))
      .map((a) => a.id)
      .sort()
      .slice(0, options.limit)
      .map((id) => this.stored(id)!);
  }

  async countFrozen(): Promise<number> {
    return [...this.accounts.values()].filter((a) => a.frozen).length;
  }

  async listAccounts(options: { after?: string; limit: number }): Promise<StoredAccount[]> {
    await this.read(1);
    return [...this.accounts.keys()]
      .sort()
      .filter((id) => options.after === undefined || id > options.after)
      .slice(0, options.limit)
      .map((id) => this.stored(id)!);
  }

  async getTransfers(ids: readonly string[]): Promise<(Transfer | undefined)[]> {
    const out = ids.map((id) => {
      const t = this.transfers.get(id);
      return t ? { ...t } : undefined;
    });
    await this.read(ids.length);
    return out;
  }

  async getIdempotency(keys: readonly string[]): Promise<(StoredKey | undefined)[]> {
    const out = keys.map((k) => {
      const r = this.idempotency.get(k);
      return r ? { ...r } : undefined;
    });
    await this.read(keys.length);
    return out;
  }

  async expiredIdempotency(before: number, limit: number): Promise<{ key: string; at: number }[]> {
    return [...this.idempotency.entries()]
      .filter(([k, r]) => r.at < before && !this.unindexed.has(k))
      .sort(([, a], [, b]) => a.at - b.at)
      .slice(0, limit)
      .map(([key, r]) => ({ key, at: r.at }));
  }

  async undatedIdempotency(options: {
    after?: string;
    limit: number;
  }): Promise<{ keys: { key: string; at: number }[]; next?: string }> {
    const page = [...this.idempotency.keys()]
      .sort()
      .filter((k) => options.after === undefined || k > options.after)
      .slice(0, options.limit);
    const keys = page
      .filter((k) => this.unindexed.has(k))
      .map((key) => ({ key, at: this.idempotency.get(key)!.at }));
    const last = page[page.length - 1];
    return { keys, ...(page.length === options.limit && last !== undefined ? { next: last } : {}) };
  }

  async commit(writes: LedgerWrite[]): Promise<void> {
    // Like a real store, the batch is encoded synchronously (spend buckets are live objects) and
    // applied later.
    const encoded = writes.map((w) =>
      w.type === 'account' ? { ...w, record: w.spend?.toRecord() } : { ...w, record: undefined },
    );
    await Promise.resolve();
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    this.commits += 1;
    for (const w of encoded) {
      if (w.type === 'account') {
        this.accounts.set(w.account.id, { ...w.account });
        if (w.record) this.spend.set(w.account.id, w.record);
      } else if (w.type === 'transfer') this.transfers.set(w.transfer.id, { ...w.transfer });
      else if (w.type === 'record') {
        if (w.value === null) this.records.delete(w.key);
        else this.records.set(w.key, w.value);
      } else if (w.type === 'idempotency') {
        this.idempotency.set(w.key, { transferId: w.transferId, fingerprint: w.fingerprint, at: w.at });
        this.unindexed.delete(w.key);
      } else if (w.type === 'idempotency_indexed') this.unindexed.delete(w.key);
      else if (w.type === 'idempotency_expired') {
        if (!w.keepRecord && this.idempotency.get(w.key)?.at === w.at) this.idempotency.delete(w.key);
      } else if (w.type === 'journal') this.entries.push(w.entry);
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

  async getRecord(key: string): Promise<string | undefined> {
    return this.records.get(key);
  }

  async listRecords(
    prefix: string,
    options: { limit?: number; reverse?: boolean; after?: string } = {},
  ): Promise<StoredRecord[]> {
    let keys = [...this.records.keys()].filter((k) => k.startsWith(prefix)).sort();
    if (options.reverse)
      keys = keys.reverse().filter((k) => options.after === undefined || k < options.after);
    else keys = keys.filter((k) => options.after === undefined || k > options.after);
    return keys.slice(0, options.limit ?? keys.length).map((key) => ({ key, value: this.records.get(key)! }));
  }

  async close(): Promise<void> {}
}
