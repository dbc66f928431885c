import { Type, type TLiteral, type TUnion } from '@sinclair/typebox';
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

/**
 * The error responses every route may give: the usual client errors by name, and any other
 * 4xx/5xx (a storage failure is 503, a busy device 429) in the same envelope.
 */
export const ErrorResponses = {
  400: ErrorBody,
  401: ErrorBody,
  402: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
  '4xx': ErrorBody,
  '5xx': ErrorBody,
};

/** msat amounts travel as decimal strings: JSON numbers cannot carry every bigint exactly. */
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
/** A count that can exceed 2^53 (metered units): a decimal string, like amounts. */
export const CountString = Type.String({ pattern: '^(0|[1-9][0-9]*)$', description: 'decimal string' });
/** Milliseconds since the epoch. */
const Time = Type.Integer();
/** One of the given strings (the schema of a TypeScript string union), typed as that union. */
export function literals<const T extends readonly [string, ...string[]]>(
  values: T,
): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(values.map((v) => Type.Literal(v))) as unknown as TUnion<{
    -readonly [K in keyof T]: TLiteral<T[K]>;
  }>;
}

/** A balance: negative only for the gateway's own system accounts (`sys:operator` funds the others). */
const BalanceString = Type.String({
  pattern: '^(0|-?[1-9][0-9]*)$',
  description: 'msat, decimal string; negative only for system accounts',
});

export const AccountBody = Type.Object(
  {
    id: Type.String(),
    kind: literals(['operator', 'agent', 'device', 'service', 'credential', 'system']),
    name: Type.String(),
    frozen: Type.Boolean(),
    balanceMsat: BalanceString,
    availableMsat: BalanceString,
    pendingOutMsat: MsatString,
    pendingInMsat: MsatString,
    tier: Type.Optional(literals(['L0', 'L1', 'L2', 'L3'])),
    createdAt: Time,
  },
  { $id: 'Account', additionalProperties: false },
);

export const PaymentBody = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    kind: literals(['bolt11', 'keysend', 'internal']),
    status: literals(['awaiting_approval', 'pending', 'succeeded', 'failed', 'denied', 'expired']),
    paymentHash: Type.String(),
    request: Type.Optional(Type.String()),
    destination: Type.String(),
    amountMsat: MsatString,
    feeLimitMsat: MsatString,
    feeMsat: Type.Optional(MsatString),
    failureReason: Type.Optional(Type.String()),
    preimage: Type.Optional(Type.String()),
    records: Type.Optional(
      Type.Array(Type.Object({ type: Type.String(), value: Type.String() }, { additionalProperties: false })),
    ),
    approvalId: Type.Optional(Type.String()),
    payeeAccountId: Type.Optional(Type.String()),
    idempotencyKey: Type.Optional(Type.String()),
    createdAt: Time,
    updatedAt: Time,
  },
  { $id: 'Payment', additionalProperties: false },
);

export const InvoiceBody = Type.Object(
  {
    paymentHash: Type.String(),
    accountId: Type.String(),
    request: Type.String(),
    amountMsat: MsatString,
    receivedMsat: Type.Optional(MsatString),
    lightningReceivedMsat: Type.Optional(
      Type.String({
        ...MsatString,
        description: 'paid over Lightning after it was settled internally (booked to the operator)',
      }),
    ),
    heldByOperatorMsat: Type.Optional(
      Type.String({
        ...MsatString,
        description:
          "paid over Lightning, but the payee's balance would have exceeded the ceiling: booked to the operator",
      }),
    ),
    description: Type.String(),
    state: literals(['open', 'settled', 'canceled']),
    settledVia: Type.Optional(literals(['internal', 'lightning'])),
    createdAt: Time,
    expiresAt: Time,
    settledAt: Type.Optional(Time),
  },
  { $id: 'Invoice', additionalProperties: false },
);

export const ApprovalBody = Type.Object(
  {
    id: Type.String(),
    paymentId: Type.String(),
    accountId: Type.String(),
    amountMsat: MsatString,
    feeLimitMsat: MsatString,
    reason: Type.String(),
    state: literals(['pending', 'approved', 'denied', 'expired']),
    createdAt: Time,
    expiresAt: Time,
    decidedAt: Type.Optional(Time),
    decidedBy: Type.Optional(Type.String()),
  },
  { $id: 'Approval', additionalProperties: false },
);

/** One entry of an account's journal (the ledger's history of changes touching it). */
export const JournalEntryBody = Type.Object(
  {
    seq: Type.Integer(),
    at: Time,
    type: literals([
      'account_created',
      'account_frozen',
      'account_unfrozen',
      'transfer_created',
      'transfer_posted',
      'transfer_voided',
    ]),
    accountIds: Type.Array(Type.String()),
    transferId: Type.Optional(Type.String()),
    amount: Type.Optional(MsatString),
    detail: Type.Optional(Type.String()),
  },
  { $id: 'JournalEntry', additionalProperties: false },
);

/** One policy decision. */
export const AuditEntryBody = Type.Object(
  {
    id: Type.String(),
    at: Time,
    accountId: Type.String(),
    action: literals(['bolt11', 'keysend', 'internal_transfer', 'l402', 'stream', 'escrow']),
    argsHash: Type.String(),
    outcome: literals(['allow', 'deny', 'needs_approval']),
    code: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    rules: Type.Array(
      Type.Object(
        {
          rule: Type.String(),
          outcome: literals(['allow', 'deny', 'needs_approval']),
          reason: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    paymentId: Type.Optional(Type.String()),
  },
  { $id: 'AuditEntry', additionalProperties: false },
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
