import type { Sql } from 'postgres';
import type { LeaderDirectory, SharedSecrets } from '../../cluster/leader-owned.js';

/** How long a follower trusts the leader's address it read (ms); a failed forward forgets it. */
const ADDRESS_TTL_MS = 1000;

/**
 * The leader's address as the elected instance wrote it (`cluster_leader`, written on the session
 * that holds the leader lock: `AdvisoryLockLeader.advertise`), read by followers to forward what
 * the leader owns. Cached for a second; forgotten after a forward failed.
 */
export class PostgresLeaderDirectory implements LeaderDirectory {
  private cached: { url: string; instanceId: string; at: number } | undefined;

  constructor(private readonly sql: Sql) {}

  async locate(): Promise<{ url: string; instanceId: string } | undefined> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < ADDRESS_TTL_MS) return this.cached;
    const [row] = await this.sql<{ url: string; instance_id: string }[]>`
      SELECT url, instance_id FROM cluster_leader WHERE id = 1`;
    this.cached = row ? { url: row.url, instanceId: row.instance_id, at: now } : undefined;
    return this.cached;
  }

  forget(): void {
    this.cached = undefined;
  }
}

/**
 * The secrets every instance of a deployment must share (the L402 root key, the device key): the
 * first instance to need one creates it (or brings the one its data directory already had, so a
 * store moved from LevelDB keeps its credentials valid); every later one reads that value.
 */
export class PostgresSharedSecrets implements SharedSecrets {
  constructor(private readonly sql: Sql) {}

  async secret(name: string, initial: () => string): Promise<string> {
    await this.sql`INSERT INTO cluster_secrets (name, value) VALUES (${name}, ${initial()})
      ON CONFLICT (name) DO NOTHING`;
    const [row] = await this.sql<{ value: string }[]>`SELECT value FROM cluster_secrets WHERE name = ${name}`;
    if (!row) throw new Error(`cluster secret ${name} vanished`);
    return row.value;
  }
}

/** Writes the leader's address on the connection holding the leader lock (see AdvisoryLockLeader). */
export async function writeLeaderAddress(sql: Sql, instanceId: string, url: string): Promise<void> {
  await sql`INSERT INTO cluster_leader (id, instance_id, url) VALUES (1, ${instanceId}, ${url})
    ON CONFLICT (id) DO UPDATE SET instance_id = EXCLUDED.instance_id, url = EXCLUDED.url, elected_at = now()`;
}
