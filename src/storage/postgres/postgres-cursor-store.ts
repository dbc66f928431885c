import type { Sql } from 'postgres';
import type { InvoiceCursor, InvoiceCursorStore } from '../../lightning/types.js';

interface CursorRow {
  add_index: string;
  settle_index: string;
}

/**
 * A duty cursor (by default the LND invoice subscription's) in PostgreSQL's `duty_cursors`, so
 * that whichever instance becomes leader resumes where the last one stopped. Both indexes only
 * move forward (`GREATEST`): when two leaders overlap for a moment, the one behind cannot pull
 * the cursor back under the other. That is safe because a saved settle index is a contiguous
 * watermark (every settlement up to it was handled), and crediting is exactly-once by payment
 * hash in the ledger whatever the cursor says. A commit is durable (synchronous_commit on) when
 * `save` resolves, as LevelDB's fsync'd put.
 */
export class PostgresCursorStore implements InvoiceCursorStore {
  constructor(
    private readonly sql: Sql,
    private readonly name = 'lightning/invoice-cursor',
  ) {}

  async load(): Promise<InvoiceCursor> {
    const [row] = await this.sql<CursorRow[]>`
      SELECT add_index, settle_index FROM duty_cursors WHERE name = ${this.name}`;
    if (!row) return { addIndex: 0, settleIndex: 0 };
    return { addIndex: Number(row.add_index), settleIndex: Number(row.settle_index) };
  }

  async save(cursor: InvoiceCursor): Promise<void> {
    await this.sql`
      INSERT INTO duty_cursors AS c (name, add_index, settle_index)
        VALUES (${this.name}, ${cursor.addIndex}, ${cursor.settleIndex})
      ON CONFLICT (name) DO UPDATE SET
        add_index = GREATEST(c.add_index, EXCLUDED.add_index),
        settle_index = GREATEST(c.settle_index, EXCLUDED.settle_index),
        updated_at = now()`;
  }
}
