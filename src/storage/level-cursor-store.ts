import type { Level } from 'level';
import { openDatabase } from './level-db.js';
import type { InvoiceCursor, InvoiceCursorStore } from '../lightning/types.js';

/** Invoice subscription cursor persisted in LevelDB with synchronous (fsync'd) writes. */
export class LevelCursorStore implements InvoiceCursorStore {
  constructor(
    private readonly db: Level<string, string>,
    private readonly key = 'lightning/invoice-cursor',
  ) {}

  static async open(path: string): Promise<{ store: LevelCursorStore; db: Level<string, string> }> {
    const db = await openDatabase(path);
    return { store: new LevelCursorStore(db), db };
  }

  async load(): Promise<InvoiceCursor> {
    const raw = await this.db.get(this.key);
    if (raw === undefined) return { addIndex: 0, settleIndex: 0 };
    const parsed = JSON.parse(raw) as InvoiceCursor;
    return { addIndex: parsed.addIndex, settleIndex: parsed.settleIndex };
  }

  async save(cursor: InvoiceCursor): Promise<void> {
    await this.db.put(this.key, JSON.stringify(cursor), { sync: true });
  }
}
