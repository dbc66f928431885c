import type { RecordStore } from '../../src/ledger/store.js';

/** Side records in memory, in key order like the ledger's; counts reads and listed records. */
export class MemoryRecords implements RecordStore {
  readonly records = new Map<string, string>();
  /** How many single-record reads were made. */
  reads = 0;
  /** How many records listings returned. */
  listed = 0;

  async putRecords(records: { key: string; value: string | null }[]): Promise<void> {
    for (const r of records) {
      if (r.value === null) this.records.delete(r.key);
      else this.records.set(r.key, r.value);
    }
  }

  async getRecord(key: string): Promise<string | undefined> {
    this.reads += 1;
    return this.records.get(key);
  }

  async listRecords(prefix: string, options: { limit?: number; after?: string } = {}) {
    const keys = [...this.records.keys()]
      .filter((k) => k.startsWith(prefix) && (options.after === undefined || k > options.after))
      .sort()
      .slice(0, options.limit);
    this.listed += keys.length;
    return keys.map((key) => ({ key, value: this.records.get(key)! }));
  }
}
