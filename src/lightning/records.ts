import type { TlvRecord } from './types.js';

/** The keysend preimage's record: set by the gateway (and LND), never by a caller. */
export const KEYSEND_PREIMAGE_TLV = 5482373484n;
/** Records below this type are reserved for the protocol (BOLT 1 "custom records" start here; LND refuses lower). */
export const MIN_CUSTOM_TLV = 65536n;
/** TLV types are BigSize integers LND keeps as uint64: a larger one would wrap modulo 2^64. */
export const MAX_TLV_TYPE = 2n ** 64n - 1n;
/**
 * What the custom records of one payment may carry in all (values, in bytes). The whole onion
 * holds 1300 bytes for every hop's payload: on regtest, 1024 bytes reached a node two hops away
 * and 1200 ended NO_ROUTE (a definitive failure, nothing stays reserved). A longer route can
 * leave less room than this; LND then fails the payment the same way.
 */
export const MAX_CUSTOM_RECORDS_BYTES = 1024;

/**
 * The one rule for custom records a caller may send (keysend): types in the custom range and
 * within uint64, not the keysend preimage's, each once; values non-empty lowercase hex, at most
 * MAX_CUSTOM_RECORDS_BYTES in all. Returns what is wrong, or undefined when they are valid.
 */
export function customRecordsProblem(records: readonly TlvRecord[]): string | undefined {
  const seen = new Set<bigint>();
  let bytes = 0;
  for (const r of records) {
    if (typeof r.type !== 'bigint' || r.type < MIN_CUSTOM_TLV || r.type > MAX_TLV_TYPE)
      return `custom record type ${String(r.type)} must be from ${MIN_CUSTOM_TLV} to ${MAX_TLV_TYPE}`;
    if (r.type === KEYSEND_PREIMAGE_TLV)
      return `custom record type ${r.type} is the keysend preimage, which the gateway sets`;
    if (seen.has(r.type)) return `custom record ${r.type} given twice`;
    seen.add(r.type);
    if (typeof r.value !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(r.value))
      return `custom record ${r.type} needs a non-empty lowercase hex value`;
    bytes += r.value.length / 2;
  }
  if (bytes > MAX_CUSTOM_RECORDS_BYTES)
    return `custom records carry ${bytes} bytes; at most ${MAX_CUSTOM_RECORDS_BYTES} fit in a payment`;
  return undefined;
}
