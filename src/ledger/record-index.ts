import type { Ledger, SideRecords } from './ledger.js';

/** What an indexed collection needs of its items. */
export interface IndexedItem {
  id: string;
  createdAt: number;
}

export interface IndexPage {
  /** Newest first; each entry's cursor continues a listing right after it. */
  entries: { id: string; cursor: string }[];
  /** Pass as `before` for the following page; absent on the last one. */
  next?: string;
}

/**
 * Side records of a collection (escrows, tasks, ...) that lives on disk, with the indexes that
 * keep memory bounded: the items not yet final (what a restart loads), and every item by
 * account and overall, newest first, a page at a time. Keys under `<name>`:
 *
 *   <name>!<id>                         the item
 *   <name>open!<id>                     present while the item is not final
 *   <name>by!<account>!<cursor>  = id   one per account the item belongs to
 *   <name>at!<cursor>            = id   every item
 *   <name>idx!v1                        written once the indexes cover every item
 *
 * The cursor is the creation time (15 digits) and the id, so entries sort by age.
 */
export class RecordIndex<T extends IndexedItem> {
  constructor(
    private readonly name: string,
    private readonly codec: { encode(item: T): string; decode(raw: string): T },
    /** The accounts an item is listed under (e.g. payer and payee). */
    private readonly accountsOf: (item: T) => (string | undefined)[],
    private readonly isFinal: (item: T) => boolean,
  ) {}

  key(id: string): string {
    return `${this.name}!${id}`;
  }

  cursor(item: T): string {
    return `${String(item.createdAt).padStart(15, '0')}!${item.id}`;
  }

  /** A cursor as `cursor()` makes them, for input validation. */
  static readonly CURSOR = /^[0-9]{15}![0-9a-f-]{36}$/;

  /** The item's record and its index entries, to be written in the same batch. */
  records(item: T): SideRecords {
    const at = this.cursor(item);
    const out: SideRecords = [
      { key: this.key(item.id), value: this.codec.encode(item) },
      { key: `${this.name}open!${item.id}`, value: this.isFinal(item) ? null : '' },
      { key: `${this.name}at!${at}`, value: item.id },
    ];
    for (const a of new Set(this.accountsOf(item)))
      if (a !== undefined) out.push({ key: `${this.name}by!${a}!${at}`, value: item.id });
    return out;
  }

  async read(ledger: Ledger, id: string): Promise<T | undefined> {
    const raw = await ledger.getRecord(this.key(id));
    return raw === undefined ? undefined : this.codec.decode(raw);
  }

  /** The items that are not final, read from disk (at start). Indexes older stores first. */
  async loadOpen(ledger: Ledger): Promise<T[]> {
    if ((await ledger.getRecord(`${this.name}idx!v1`)) === undefined) await this.reindex(ledger);
    const prefix = `${this.name}open!`;
    const out: T[] = [];
    for (const r of await ledger.listRecords(prefix)) {
      const item = await this.read(ledger, r.key.slice(prefix.length));
      if (item && !this.isFinal(item)) out.push(item);
    }
    return out;
  }

  /** Item ids of an account (or all), newest first, after the cursor `before`. */
  async page(
    ledger: Ledger,
    accountId: string | undefined,
    limit: number,
    before?: string,
  ): Promise<IndexPage> {
    const prefix = accountId === undefined ? `${this.name}at!` : `${this.name}by!${accountId}!`;
    const entries = await ledger.listRecords(prefix, {
      reverse: true,
      limit: limit + 1,
      ...(before !== undefined ? { after: prefix + before } : {}),
    });
    const shown = entries.slice(0, limit);
    const last = shown[shown.length - 1];
    return {
      entries: shown.map((r) => ({ id: r.value, cursor: r.key.slice(prefix.length) })),
      ...(entries.length > limit && last ? { next: last.key.slice(prefix.length) } : {}),
    };
  }

  /** Writes the index entries of every item (a store from before the indexes), then the mark. */
  private async reindex(ledger: Ledger): Promise<void> {
    const prefix = `${this.name}!`;
    let after: string | undefined;
    for (;;) {
      const page = await ledger.listRecords(prefix, { limit: 500, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      await ledger.putRecords(page.flatMap((r) => this.records(this.codec.decode(r.value))));
      after = page[page.length - 1]!.key;
    }
    await ledger.putRecords([{ key: `${this.name}idx!v1`, value: String(Date.now()) }]);
  }
}

/** A bounded cache of recently used items, oldest first out. */
export class RecentItems<T extends IndexedItem> {
  private readonly items = new Map<string, T>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.items.size;
  }

  get(id: string): T | undefined {
    return this.items.get(id);
  }

  put(item: T): void {
    this.items.delete(item.id);
    this.items.set(item.id, item);
    if (this.items.size > this.max) this.items.delete(this.items.keys().next().value!);
  }

  delete(id: string): void {
    this.items.delete(id);
  }
}
