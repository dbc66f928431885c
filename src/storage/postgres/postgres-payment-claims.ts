import type { Sql } from 'postgres';
import type { ClaimResult, PaymentHashClaims } from '../../payments/hash-claims.js';
import type { Payment } from '../../payments/types.js';

/** A claim whose attempt left no record this long is an instance's that died before reserving. */
const STALE_MS = 60_000;

/**
 * `payment_hash_claims` (migration 9): one row per payment hash paid through LND, naming the
 * attempt that holds it. A claim is an `INSERT ... ON CONFLICT DO NOTHING`; a takeover an
 * `UPDATE ... WHERE payment_id = <the holder read>`, so of two instances taking over one failed
 * attempt's hash at once, one wins.
 */
export class PostgresPaymentHashClaims implements PaymentHashClaims {
  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}

  async claim(
    hash: string,
    paymentId: string,
    attemptOf: (id: string) => Promise<Payment | undefined>,
  ): Promise<ClaimResult> {
    const at = this.now();
    const inserted = await this.sql`INSERT INTO payment_hash_claims (payment_hash, payment_id, claimed_at)
      VALUES (${hash}, ${paymentId}, ${at}) ON CONFLICT (payment_hash) DO NOTHING RETURNING payment_id`;
    if (inserted.length === 1) return { claimed: true };
    const [row] = await this.sql<{ payment_id: string; claimed_at: string }[]>`
      SELECT payment_id, claimed_at FROM payment_hash_claims WHERE payment_hash = ${hash}`;
    if (!row) return this.claim(hash, paymentId, attemptOf); // released meanwhile
    if (row.payment_id === paymentId) return { claimed: true };
    const holder = await attemptOf(row.payment_id);
    // What blocks another attempt within one process blocks it here (`assertNotPaid`).
    const live =
      holder &&
      (holder.status === 'succeeded' || holder.status === 'pending' || holder.status === 'awaiting_approval');
    const free = holder ? !live : at - Number(row.claimed_at) >= STALE_MS;
    if (!free) return holder ? { claimed: false, holder } : { claimed: false };
    const taken = await this.sql`UPDATE payment_hash_claims SET payment_id = ${paymentId}, claimed_at = ${at}
      WHERE payment_hash = ${hash} AND payment_id = ${row.payment_id} RETURNING payment_id`;
    return taken.length === 1 ? { claimed: true } : { claimed: false };
  }

  async release(hash: string, paymentId: string): Promise<void> {
    await this
      .sql`DELETE FROM payment_hash_claims WHERE payment_hash = ${hash} AND payment_id = ${paymentId}`;
  }
}
