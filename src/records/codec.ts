import { Type, type StaticDecode, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { CodedError } from '../domain/errors.js';
import { msat, type Msat } from '../domain/msat.js';

/**
 * Typed JSON codecs for side records: one schema per record type says its shape and which
 * fields are msat amounts. Amounts are decimal strings on disk and `Msat` (validated with
 * `msat()`) in memory; a record that does not match its schema is refused with
 * `CORRUPT_RECORD` instead of travelling on as a wrongly typed object (`JSON.parse(v) as X`).
 */

export type RecordErrorCode = 'CORRUPT_RECORD';
const STATUS: Record<RecordErrorCode, number> = { CORRUPT_RECORD: 500 };

export class RecordError extends CodedError<RecordErrorCode> {
  constructor(code: RecordErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}

const DECIMAL = '^(0|[1-9][0-9]{0,18})$';

/** An msat amount: a decimal string on disk, `Msat` in memory. */
export const MsatField = Type.Transform(Type.String({ pattern: DECIMAL }))
  .Decode((s): Msat => msat(s))
  .Encode((m: Msat): string => m.toString());

export interface RecordCodec<T> {
  /** The record type's name, for errors. */
  readonly name: string;
  encode(value: T): string;
  /** Parses and checks a stored record; throws `RecordError` (CORRUPT_RECORD) if it does not fit. */
  decode(raw: string): T;
}

/** Bigints (the msat fields) as decimal strings; everything else as JSON has it. */
const bigintsAsStrings = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

/**
 * The codec of a record type from its schema (msat fields declared with `MsatField`). Encoding
 * writes amounts as decimal strings; decoding checks the shape and turns them back into `Msat`.
 */
export function recordCodec<S extends TSchema>(name: string, schema: S): RecordCodec<StaticDecode<S>> {
  const compiled = TypeCompiler.Compile(schema);
  return {
    name,
    encode: (value) => JSON.stringify(value, bigintsAsStrings),
    decode: (raw) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        throw new RecordError('CORRUPT_RECORD', `a ${name} record is not JSON`);
      }
      if (!compiled.Check(parsed)) {
        const first = compiled.Errors(parsed).First();
        throw new RecordError('CORRUPT_RECORD', `a ${name} record does not have its shape`, {
          ...(first ? { path: first.path, problem: first.message } : {}),
        });
      }
      try {
        return compiled.Decode(parsed);
      } catch (err) {
        throw new RecordError('CORRUPT_RECORD', `a ${name} record has an invalid amount`, {
          cause: err instanceof Error ? err.message : String(err),
        });
      }
    },
  };
}

/** A union of string literals (states, kinds), typed as that union. */
export function Literals<const T extends readonly [string, ...string[]]>(
  ...values: T
): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map((v) => Type.Literal(v))) as TUnion<{
    -readonly [K in keyof T]: TLiteral<T[K]>;
  }>;
}
