/** LND cancels held HTLCs itself when `height + 18 >= expiry` (holdexpirydelta = 16 + 2). */
export const LND_HOLD_EXPIRY_DELTA = 18;
/** Phoenix and others refuse invoices whose final CLTV exceeds 450 blocks. */
export const MAX_WALLET_CLTV = 450;
export const DEFAULT_ESCROW_CLTV = 144;
/** Below this the safety margin leaves no time to hold the payment at all. */
export const MIN_ESCROW_CLTV = 40;
/** We cancel this many blocks before LND would: no force-close races, no spinning wallets. */
export const DEFAULT_SAFETY_BLOCKS = 12;
export const BLOCK_TIME_MS = 600_000;

/** True once a held HTLC is too close to its timeout to keep holding it. */
export function mustCancel(htlcExpiryHeight: number, height: number, safetyBlocks: number): boolean {
  return htlcExpiryHeight - height <= LND_HOLD_EXPIRY_DELTA + safetyBlocks;
}

/**
 * How long a hold invoice with this final CLTV can safely be held, in wall-clock time at the
 * expected block rate: the wall-clock deadline must fit inside it.
 */
export function maxHoldMs(cltvDelta: number, safetyBlocks: number, blockTimeMs = BLOCK_TIME_MS): number {
  return Math.max(0, cltvDelta - LND_HOLD_EXPIRY_DELTA - safetyBlocks) * blockTimeMs;
}
