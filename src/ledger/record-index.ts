import type { Ledger, SideRecords } from './ledger.js';

/** What an indexed collection needs of its items (their id comes from `idOf`). */
export interface IndexedItem {
  createdAt: number;
}

const UUID = /^[0-9a-f-]{36}$/;

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
 * The cursor is the creation time (15 digits) and the id, so entries sort by age. Older stores are
 * indexed once at start; going back to a version that writes items without their index entries
 * after that is not supported (those items would not be loaded as open).
 */
export class RecordIndex<T extends IndexedItem> {
  constructor(
    readonly name: string,
    private readonly codec: { encode(item: T): string; decode(raw: string): T },
    /** The accounts an item is listed under (e.g. payer and payee). */
    private readonly accountsOf: (item: T) => (string | undefined)[],
    readonly isFinal: (item: T) => boolean,
    readonly idOf: (item: T) => string = (item) => (item as T & { id: string }).id,
    /** What a valid id looks like: anything else is not looked up on disk. */
    readonly idPattern: RegExp = UUID,
  ) {}

  key(id: string): string {
    return `${this.name}!${id}`;
  }

  cursor(item: T): string {
    return `${String(item.createdAt).padStart(15, '0')}!${this.idOf(item)}`;
  }

  /** A cursor as `cursor()` makes them for UUID ids, for input validation. */
  static readonly CURSOR = /^[0-9]{15}![0-9a-f-]{36}$/;

  /** The item's record and its index entries, to be written in the same batch. */
  records(item: T): SideRecords {
    const at = this.cursor(item);
    const id = this.idOf(item);
    const out: SideRecords = [
      { key: this.key(id), value: this.codec.encode(item) },
      { key: `${this.name}open!${id}`, value: this.isFinal(item) ? null : '' },
      { key: `${this.name}at!${at}`, value: id },
    ];
    for (const a of new Set(this.accountsOf(item)))
      if (a !== undefined) out.push({ key: `${this.name}by!${a}!${at}`, value: id });
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

/**
 * The items of a `RecordIndex` held in memory: every open one (loaded at start; what sweeps
 * work on), and a bounded cache of recently used closed ones; the rest stay on disk.
 */
export class IndexedItems<T extends IndexedItem> {
  private readonly open = new Map<string, T>();
  private readonly closed: RecentItems<T>;

  constructor(
    private readonly index: RecordIndex<T>,
    private readonly ledger: Ledger,
    closedInMemory = 1000,
  ) {
    this.closed = new RecentItems(closedInMemory, index.idOf);
  }

  async load(): Promise<void> {
    for (const item of await this.index.loadOpen(this.ledger)) this.open.set(this.index.idOf(item), item);
  }

  /** The open items. */
  values(): IterableIterator<T> {
    return this.open.values();
  }

  /** The item, from memory or its record (then cached); undefined when there is none. */
  async find(id: string): Promise<T | undefined> {
    let item = this.cached(id);
    if (!item) {
      const stored = this.index.idPattern.test(id) ? await this.index.read(this.ledger, id) : undefined;
      if (!stored) return undefined;
      // Another call may have loaded or changed it meanwhile: memory wins.
      item = this.cached(id) ?? stored;
    }
    this.remember(item);
    return item;
  }

  /**
   * The item as the store has it now (a shared store: another instance may have closed it), filed
   * in memory by that state; memory's copy while both are open, or when the store has none yet.
   */
  async reread(id: string): Promise<T | undefined> {
    const stored = this.index.idPattern.test(id) ? await this.index.read(this.ledger, id) : undefined;
    if (!stored) return this.cached(id);
    // Still open: memory's copy stays the one its users hold.
    const mine = this.open.get(id);
    if (mine && !this.index.isFinal(stored)) return mine;
    // Final in memory, still open in the store: this instance's own write of it is on its way
    // (an item never reopens). Filing the older copy as open again would keep it pending here
    // forever (its tracking loop spinning, its listing stale) once that write lands.
    const known = this.closed.get(id);
    if (known && this.index.isFinal(known) && !this.index.isFinal(stored)) return known;
    this.remember(stored);
    return stored;
  }

  /**
   * The open items as the store has them (a shared store: those of every instance), a page of
   * `limit` after the id `after`; memory's copy of those this instance holds. Bounded by what is
   * live, never by history.
   */
  async openOnDisk(limit: number, after?: string): Promise<{ items: T[]; next?: string }> {
    const prefix = `${this.index.name}open!`;
    const items: T[] = [];
    const listed = await this.ledger.listRecords(prefix, {
      limit,
      ...(after ? { after: prefix + after } : {}),
    });
    for (const r of listed) {
      const id = r.key.slice(prefix.length);
      const item = this.open.get(id) ?? (await this.index.read(this.ledger, id));
      if (item && !this.index.isFinal(item)) items.push(item);
    }
    const last = listed[listed.length - 1];
    return { items, ...(listed.length === limit && last ? { next: last.key.slice(prefix.length) } : {}) };
  }

  /** Every open item on disk (`openOnDisk`), a page of `pageSize` read at a time. */
  async *allOpenOnDisk(pageSize = 500): AsyncGenerator<T> {
    let after: string | undefined;
    do {
      const page = await this.openOnDisk(pageSize, after);
      yield* page.items;
      after = page.next;
    } while (after !== undefined);
  }

  /** The item for reading only (listings): from memory, else its record, without caching it. */
  async peek(id: string): Promise<T | undefined> {
    return (
      this.cached(id) ?? (this.index.idPattern.test(id) ? await this.index.read(this.ledger, id) : undefined)
    );
  }

  /** An open item, from memory only (closed or unknown: undefined). */
  openItem(id: string): T | undefined {
    return this.open.get(id);
  }

  /** Files an item by its state: open ones in the open set, closed ones in the cache. */
  remember(item: T): void {
    const id = this.index.idOf(item);
    if (!this.index.isFinal(item)) {
      this.open.set(id, item);
      return;
    }
    this.open.delete(id);
    this.closed.put(item);
  }

  stats(): { open: number; closedInMemory: number } {
    return { open: this.open.size, closedInMemory: this.closed.size };
  }

  /** The item if it is in memory (open, or in the cache of recent ones), without touching the disk. */
  cached(id: string): T | undefined {
    return this.open.get(id) ?? this.closed.get(id);
  }
}

/** A bounded cache of recently used items, oldest first out. */
class RecentItems<T extends IndexedItem> {
  private readonly items = new Map<string, T>();

  constructor(
    private readonly max: number,
    private readonly idOf: (item: T) => string,
  ) {}

  get size(): number {
    return this.items.size;
  }

  get(id: string): T | undefined {
    return this.items.get(id);
  }

  put(item: T): void {
    const id = this.idOf(item);
    this.items.delete(id);
    this.items.set(id, item);
    if (this.items.size > this.max) this.items.delete(this.items.keys().next().value!);
  }

  delete(id: string): void {
    this.items.delete(id);
  }
}
