import { randomUUID } from 'node:crypto';
import type { Sql } from 'postgres';
import type { AccountLeaseStore, LeaseGrant } from '../../ledger/store.js';
import type { Transfer } from '../../ledger/types.js';
import { transferOf, type TransferRow } from './postgres-rows.js';

/**
 * Account leases in `ledger_leases` (migration 5): one statement takes the free or expired leases
 * and renews this holder's (by the database's clock, so instances' clocks do not matter); a
 * second, only when some were refused, marks those wanted. Epochs come from one sequence.
 */
export class PostgresAccountLeases implements AccountLeaseStore {
  /** New at every start: a restarted instance holds nothing of its previous life. */
  readonly holder = randomUUID();

  constructor(private readonly sql: Sql) {}

  async acquireLeases(
    ids: readonly string[],
    ttlMs: number,
  ): Promise<{ granted: LeaseGrant[]; refused: string[] }> {
    if (ids.length === 0) return { granted: [], refused: [] };
    const wanted = [...new Set(ids)].sort();
    const rows = await this.sql<{ account_id: string; epoch: string; wanted: boolean }[]>`
      INSERT INTO ledger_leases AS l (account_id, holder, epoch, expires_at)
        SELECT id, ${this.holder}, nextval('ledger_lease_epoch'),
          clock_timestamp() + ${ttlMs}::int * interval '1 millisecond'
        FROM unnest(${wanted}::text[]) AS id
      ON CONFLICT (account_id) DO UPDATE SET
        epoch = CASE WHEN l.holder = EXCLUDED.holder THEN l.epoch ELSE EXCLUDED.epoch END,
        wanted_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.wanted_at END,
        holder = EXCLUDED.holder,
        expires_at = EXCLUDED.expires_at
        WHERE l.holder = EXCLUDED.holder OR l.expires_at < clock_timestamp()
      RETURNING account_id, epoch, wanted_at IS NOT NULL AS wanted`;
    const granted = rows.map((r) => ({ accountId: r.account_id, epoch: Number(r.epoch), wanted: r.wanted }));
    const got = new Set(granted.map((g) => g.accountId));
    const refused = wanted.filter((id) => !got.has(id));
    if (refused.length > 0)
      await this.sql`
        UPDATE ledger_leases SET wanted_at = coalesce(wanted_at, clock_timestamp())
        WHERE account_id = ANY (${refused}::text[]) AND holder <> ${this.holder}`;
    return { granted, refused };
  }

  async wantedLeases(): Promise<string[]> {
    const rows = await this.sql<{ account_id: string }[]>`
      SELECT account_id FROM ledger_leases WHERE holder = ${this.holder} AND wanted_at IS NOT NULL`;
    return rows.map((r) => r.account_id);
  }

  async pendingDebits(accountIds: readonly string[]): Promise<Transfer[]> {
    if (accountIds.length === 0) return [];
    const rows = await this.sql<TransferRow[]>`
      SELECT * FROM ledger_transfers
        WHERE state = 'pending' AND debit_account_id IN (SELECT unnest(${[...accountIds]}::text[]))
        ORDER BY id`;
    return rows.map(transferOf);
  }

  async releaseLeases(leases: readonly { accountId: string; epoch: number }[]): Promise<void> {
    if (leases.length === 0) return;
    await this.sql`
      DELETE FROM ledger_leases l
        USING unnest(${leases.map((x) => x.accountId)}::text[], ${leases.map((x) => String(x.epoch))}::bigint[])
          AS x(id, epoch)
        WHERE l.account_id = x.id AND l.epoch = x.epoch AND l.holder = ${this.holder}`;
  }
}
