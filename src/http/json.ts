/** The JSON form of a value: bigints (msat amounts, counts) become decimal strings. */
export type Jsonified<T> = T extends bigint
  ? string
  : T extends readonly (infer U)[]
    ? Jsonified<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonified<T[K]> }
      : T;

/** A JSON-safe copy: bigints (msat amounts) become decimal strings. */
export function jsonSafe<T>(value: T): Jsonified<T> {
  return JSON.parse(
    JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
  ) as Jsonified<T>;
}
