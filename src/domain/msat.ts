/** Millisatoshi amount: a non-negative integer bigint, branded so that plain numbers never pass as money. */
declare const msatBrand: unique symbol;
export type Msat = bigint & { readonly [msatBrand]: 'msat' };

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/** The largest amount any Lightning value can take (21e6 BTC in msat). */
export const MAX_MSAT = 2_100_000_000_000_000_000n as Msat;

export class InvalidAmountError extends Error {
  readonly code = 'INVALID_AMOUNT';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidAmountError';
  }
}

/** Parses and validates an msat amount from a bigint, a safe integer or a decimal string. */
export function msat(value: bigint | number | string): Msat {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new InvalidAmountError(`msat amount must be a safe integer, got ${value}`);
    v = BigInt(value);
  } else {
    if (!DECIMAL.test(value))
      throw new InvalidAmountError(`msat amount must be a decimal integer string, got "${value}"`);
    v = BigInt(value);
  }
  if (v < 0n) throw new InvalidAmountError(`msat amount must not be negative, got ${v}`);
  if (v > MAX_MSAT) throw new InvalidAmountError(`msat amount exceeds 21M BTC, got ${v}`);
  return v as Msat;
}

export const ZERO_MSAT = 0n as Msat;

export function satToMsat(sat: bigint | number): Msat {
  return msat(BigInt(sat) * 1000n);
}

/** Whole satoshis, rounded down (LND's `tokens`). */
export function msatToSatFloor(amount: Msat): bigint {
  return amount / 1000n;
}

export function addMsat(a: Msat, b: Msat): Msat {
  return msat(a + b);
}

/** a - b; throws rather than going negative. */
export function subMsat(a: Msat, b: Msat): Msat {
  return msat(a - b);
}
