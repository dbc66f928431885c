import type { Payment } from './types.js';

/**
 * One live attempt per payment hash across the instances of a shared store, held by the database
 * (`PostgresPaymentHashClaims`): within one process the attempts at a hash are read and reserved
 * under a per-hash queue, which another process does not see. LND takes one payment per hash, and
 * a second attempt would be told "in flight" or "already paid", then tracked by hash to the first
 * attempt's outcome: both would be booked as one payment. The embedded store has no claims (one
 * process, the queue suffices).
 */
export interface PaymentHashClaims {
  /**
   * Claims `hash` for the attempt `paymentId`. An earlier claim is taken over when its attempt
   * ended without paying (failed, denied, expired: `attemptOf` reads it from the store), or when it
   * has no record a minute after it was claimed (its instance died before reserving); else the
   * holder is returned, when it has a record.
   */
  claim(
    hash: string,
    paymentId: string,
    attemptOf: (id: string) => Promise<Payment | undefined>,
  ): Promise<ClaimResult>;
  /** Gives the claim up: the attempt was refused before anything was reserved. */
  release(hash: string, paymentId: string): Promise<void>;
}

export type ClaimResult = { claimed: true } | { claimed: false; holder?: Payment };
