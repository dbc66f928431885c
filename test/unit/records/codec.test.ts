import { Type } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Literals, MsatField, recordCodec, RecordError } from '../../../src/records/codec.js';

const codec = recordCodec(
  'sample',
  Type.Object({
    id: Type.String(),
    amountMsat: MsatField,
    feeMsat: Type.Optional(MsatField),
    state: Literals('open', 'closed'),
  }),
);

const code = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return err instanceof RecordError ? err.code : 'OTHER';
  }
  return undefined;
};

describe('recordCodec', () => {
  it('writes msat fields as decimal strings and reads them back as Msat', () => {
    const raw = codec.encode({ id: 'a', amountMsat: msat(2_100_000_000_000_000_000n), state: 'open' });
    expect(JSON.parse(raw)).toEqual({ id: 'a', amountMsat: '2100000000000000000', state: 'open' });
    const back = codec.decode(raw);
    expect(back.amountMsat).toBe(2_100_000_000_000_000_000n);
    expect(back.feeMsat).toBeUndefined();
    expect(codec.decode(codec.encode({ ...back, feeMsat: msat(7) })).feeMsat).toBe(7n);
  });

  it('refuses a record that is not its shape, with CORRUPT_RECORD', () => {
    expect(code(() => codec.decode('{'))).toBe('CORRUPT_RECORD');
    expect(code(() => codec.decode('{"id":"a","state":"open"}'))).toBe('CORRUPT_RECORD');
    expect(code(() => codec.decode('{"id":"a","amountMsat":5,"state":"open"}'))).toBe('CORRUPT_RECORD');
    expect(code(() => codec.decode('{"id":"a","amountMsat":"-5","state":"open"}'))).toBe('CORRUPT_RECORD');
    expect(code(() => codec.decode('{"id":"a","amountMsat":"1.5","state":"open"}'))).toBe('CORRUPT_RECORD');
    expect(code(() => codec.decode('{"id":"a","amountMsat":"1","state":"gone"}'))).toBe('CORRUPT_RECORD');
  });

  it('refuses an amount above 21M BTC', () => {
    expect(code(() => codec.decode('{"id":"a","amountMsat":"2100000000000000001","state":"open"}'))).toBe(
      'CORRUPT_RECORD',
    );
  });
});
