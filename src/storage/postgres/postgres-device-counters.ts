import type { Sql } from 'postgres';
import type { CounterClaim, DeviceCounterStore } from '../../devices/counters.js';

/**
 * Devices' counters in PostgreSQL's `device_counters` (migration 6), shared by every instance.
 * Taking a request counter is one conditional upsert: the row is inserted, or updated only
 * `WHERE counter < the new one AND NOT revoked`. Under READ COMMITTED an `INSERT ... ON CONFLICT
 * DO UPDATE` locks the conflicting row and evaluates its `WHERE` on the latest committed version,
 * so of any number of instances presenting the same counter at once exactly one gets a row back;
 * the others get none (REPLAYED). Event numbers are incremented in place the same way. Durable
 * when a call resolves (synchronous_commit on).
 */
export class PostgresDeviceCounters implements DeviceCounterStore {
  constructor(private readonly sql: Sql) {}

  async advance(deviceId: string, counter: number): Promise<CounterClaim> {
    const taken = await this.sql`
      INSERT INTO device_counters AS c (device_id, counter) VALUES (${deviceId}, ${counter})
      ON CONFLICT (device_id) DO UPDATE SET counter = EXCLUDED.counter, updated_at = now()
        WHERE c.counter < EXCLUDED.counter AND NOT c.revoked
      RETURNING 1`;
    if (taken.length > 0) return { accepted: true };
    const [row] = await this.sql<{ counter: string; revoked: boolean }[]>`
      SELECT counter, revoked FROM device_counters WHERE device_id = ${deviceId}`;
    return { accepted: false, last: Number(row?.counter ?? counter), revoked: row?.revoked ?? false };
  }

  async nextEventSeq(deviceId: string, atLeast: number): Promise<number> {
    const [row] = await this.sql<{ event_seq: string }[]>`
      INSERT INTO device_counters AS c (device_id, event_seq) VALUES (${deviceId}, ${atLeast})
      ON CONFLICT (device_id) DO UPDATE
        SET event_seq = GREATEST(c.event_seq + 1, EXCLUDED.event_seq), updated_at = now()
      RETURNING event_seq`;
    return Number(row!.event_seq);
  }

  async revoke(deviceId: string): Promise<void> {
    await this.sql`
      INSERT INTO device_counters AS c (device_id, revoked) VALUES (${deviceId}, true)
      ON CONFLICT (device_id) DO UPDATE SET revoked = true, updated_at = now()`;
  }
}
