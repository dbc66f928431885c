import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { InvalidAmountError, MAX_MSAT, msat, satToMsat, subMsat } from '../../../src/domain/msat.js';

describe('msat', () => {
  it('accepts bigints, safe integers and decimal strings', () => {
    expect(msat(5n)).toBe(5n);
    expect(msat(1000)).toBe(1000n);
    expect(msat('2100000000000000000')).toBe(MAX_MSAT);
  });

  it.each([-1n, 1.5, Number.MAX_SAFE_INTEGER + 2, '01', '1e3', '', ' 1', '-5', 'abc'])('rejects %s', (v) => {
    expect(() => msat(v as bigint | number | string)).toThrow(InvalidAmountError);
  });

  it('rejects amounts above 21M BTC', () => {
    expect(() => msat(MAX_MSAT + 1n)).toThrow(/21M/);
  });

  it('converts sat exactly and refuses to go negative', () => {
    expect(satToMsat(21)).toBe(21_000n);
    expect(() => subMsat(msat(1), msat(2))).toThrow(InvalidAmountError);
  });

  it('round-trips every valid amount through its decimal string', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_MSAT }), (v) => {
        expect(msat(v.toString())).toBe(v);
      }),
    );
  });
});
