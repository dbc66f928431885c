import { Type } from '@sinclair/typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorBody' },
);

/** msat amounts travel as decimal strings: JSON numbers cannot carry every bigint exactly. */
export const MsatString = Type.String({
  pattern: '^(0|[1-9][0-9]*)$',
  description: 'amount in millisatoshi, decimal string',
});
