import { Type } from '@sinclair/typebox';
import { RecordIndex } from '../ledger/record-index.js';

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
/** The error responses every account route may give. */
export const ErrorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  402: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
};

/** A JSON object whose fields the route documents in its description (escrows, tasks, streams). */
export const AnyObject = Type.Record(Type.String(), Type.Unknown());

export const MSAT_PATTERN = '^(0|[1-9][0-9]*)$';
export const MsatString = Type.String({
  pattern: MSAT_PATTERN,
  description: 'amount in millisatoshi, decimal string',
});

/**
 * An account id an operator may choose: letters, digits, `_`, `-` and `.`, not led by a dot (so
 * never `.` or `..`, which a URL would resolve away). The ledger enforces the same rule (plus the
 * `:` of system ids such as `sys:operator` and `l402:<token id>`, which no client creates).
 */
export const NewAccountId = Type.String({ pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$' });
/** Any account id in a path: the ledger's rule, at most 128 characters. */
export const AccountId = Type.String({ pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.:-]{0,127}$' });
export const IdParams = Type.Object({ id: AccountId });
export const IdempotencyKey = Type.String({
  minLength: 1,
  maxLength: 128,
  description: 'a retry with the same key returns the first result',
});
export const Hash = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const AccountBody = Type.Object(
  {
    id: Type.String(),
    kind: Type.String(),
    name: Type.String(),
    frozen: Type.Boolean(),
    balanceMsat: MsatString,
    availableMsat: MsatString,
    pendingOutMsat: MsatString,
    pendingInMsat: MsatString,
    tier: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
  },
  { $id: 'Account' },
);

export const PaymentBody = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    kind: Type.String(),
    status: Type.String(),
    paymentHash: Type.String(),
    destination: Type.String(),
    amountMsat: MsatString,
    feeLimitMsat: MsatString,
    feeMsat: Type.Optional(MsatString),
    failureReason: Type.Optional(Type.String()),
    preimage: Type.Optional(Type.String()),
    approvalId: Type.Optional(Type.String()),
    payeeAccountId: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
  },
  { $id: 'Payment', additionalProperties: true },
);

export const InvoiceBody = Type.Object(
  {
    paymentHash: Type.String(),
    accountId: Type.String(),
    request: Type.String(),
    amountMsat: MsatString,
    receivedMsat: Type.Optional(MsatString),
    description: Type.String(),
    state: Type.String(),
    settledVia: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
    expiresAt: Type.Integer(),
    settledAt: Type.Optional(Type.Integer()),
  },
  { $id: 'Invoice' },
);

const Amount = MsatString;
/** A count limit: bounded, so it is always an exact integer (never a float like 6.6e31). */
const Count = Type.Integer({ minimum: 0, maximum: 1_000_000 });

export const PolicyRuleBody = Type.Union([
  Type.Object({ type: Type.Literal('no_spending') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('max_per_payment'), maxMsat: Amount }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('budget'),
      window: Type.Union([
        Type.Literal('hour'),
        Type.Literal('day'),
        Type.Literal('week'),
        Type.Literal('month'),
      ]),
      maxMsat: Amount,
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('max_share_of_balance'),
      basisPoints: Type.Integer({ minimum: 0, maximum: 10_000 }),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('min_reserve'), minMsat: Amount }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('payee_allowlist'),
      pubkeys: Type.Optional(Type.Array(Type.String())),
      domains: Type.Optional(Type.Array(Type.String())),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('payee_denylist'),
      pubkeys: Type.Optional(Type.Array(Type.String())),
      domains: Type.Optional(Type.Array(Type.String())),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('max_in_flight'), max: Count }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('max_per_minute'), max: Count }, { additionalProperties: false }),
  Type.Object(
    { type: Type.Literal('approval_above'), thresholdMsat: Amount },
    { additionalProperties: false },
  ),
]);

export const Tier = Type.Union([
  Type.Literal('L0'),
  Type.Literal('L1'),
  Type.Literal('L2'),
  Type.Literal('L3'),
]);

/** Paging of a newest-first list: `before` is the `next` cursor of the previous page. */
export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    before: Type.Optional(Type.String({ pattern: RecordIndex.CURSOR.source })),
  },
  { additionalProperties: false },
);
