/**
 * On a store shared by several instances (PostgreSQL), the longest time (ms) an instance trusts
 * what it read of something that can be withdrawn (an API key's record, whether an L402
 * credential is revoked) before it reads it again: a revocation made through one instance is
 * honoured by every instance within this bound. One process owning its store (LevelDB) trusts
 * its memory, which every revocation goes through.
 */
export const SHARED_REVOCATION_BOUND_MS = 1_000;
