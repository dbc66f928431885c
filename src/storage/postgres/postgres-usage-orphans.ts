import type { Sql } from 'postgres';
import type { PendingUsage, UsageOrphanSource } from '../../proxy/usage-orphans.js';
import { USAGE } from '../../proxy/usage-orphans.js';
import { LEADER_APPLICATION } from './advisory-lock-leader.js';

/**
 * What the leader's sweep of orphaned metered reservations reads (`UsageOrphans`): the pending
 * usage transfers (through the index of pending ones: bounded by what is live), and which
 * instances are connected now — each keeps its election session open under the application name
 * `coulomb-leader <instance id>` for as long as it runs, and the server drops it when it dies.
 */
export class PostgresUsageOrphans implements UsageOrphanSource {
  constructor(private readonly sql: Sql) {}

  async pendingUsage(createdBefore: number, limit: number): Promise<PendingUsage[]> {
    const rows = await this.sql<
      {
        id: string;
        debit_account_id: string;
        credit_account_id: string;
        memo: string | null;
        created_at: string;
      }[]
    >`
      SELECT id, debit_account_id, credit_account_id, memo, created_at FROM ledger_transfers
      WHERE state = 'pending' AND code = ${USAGE} AND created_at < ${createdBefore}
      ORDER BY created_at, id LIMIT ${limit}`;
    return rows.map((r) => ({
      id: r.id,
      debitAccountId: r.debit_account_id,
      creditAccountId: r.credit_account_id,
      ...(r.memo !== null ? { memo: r.memo } : {}),
      createdAt: Number(r.created_at),
    }));
  }

  async liveInstances(): Promise<Set<string>> {
    const prefix = `${LEADER_APPLICATION} `;
    const rows = await this.sql<{ name: string }[]>`
      SELECT application_name AS name FROM pg_stat_activity
      WHERE datname = current_database() AND starts_with(application_name, ${prefix})`;
    return new Set(rows.map((r) => r.name.slice(prefix.length)));
  }
}
