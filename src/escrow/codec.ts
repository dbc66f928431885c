import { Type } from '@sinclair/typebox';
import { RecordIndex } from '../ledger/record-index.js';
import { MsatField, recordCodec, type RecordCodec } from '../records/codec.js';
import { INDEXED, PREFIXES } from '../records/prefixes.js';
import type { Escrow } from './types.js';

const L = <T extends string>(v: T) => Type.Literal(v);

export const escrowKey = (id: string): string => `escrow!${id}`;
/** An account's receipt keys: `rkey!<account>!<pubkey>`. */
export const receiptKeysPrefix = (accountId: string): string => `${PREFIXES.receiptKey.prefix}${accountId}!`;
export const receiptKeyKey = (accountId: string, pubkey: string): string =>
  `${receiptKeysPrefix(accountId)}${pubkey}`;

export const escrowCodec: RecordCodec<Escrow> = recordCodec(
  'escrow',
  Type.Object({
    id: Type.String(),
    payerAccountId: Type.String(),
    payeeAccountId: Type.Optional(Type.String()),
    amountMsat: MsatField,
    description: Type.String(),
    condition: Type.Union([
      Type.Object({ type: L('approval') }),
      Type.Object({ type: L('preimage'), paymentHash: Type.String() }),
      Type.Object({ type: L('receipt') }),
      Type.Object({ type: L('webhook'), url: Type.String(), timeoutMs: Type.Number() }),
    ]),
    funding: Type.Union([L('lightning'), L('account')]),
    state: Type.Union([
      L('open'),
      L('funded'),
      L('releasing'),
      L('released'),
      L('refunding'),
      L('refunded'),
      L('expired'),
    ]),
    paymentHash: Type.String(),
    preimage: Type.Optional(Type.String()),
    request: Type.Optional(Type.String()),
    cltvDelta: Type.Number(),
    htlcExpiryHeight: Type.Optional(Type.Number()),
    deadline: Type.Number(),
    lockTransferId: Type.Optional(Type.String()),
    payoutRequest: Type.Optional(Type.String()),
    payoutPaymentId: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    verifierError: Type.Optional(Type.String()),
    createdAt: Type.Number(),
    updatedAt: Type.Number(),
    fundedAt: Type.Optional(Type.Number()),
    resolvedAt: Type.Optional(Type.Number()),
  }),
);

/** An escrow as its parties see it: never the preimage the gateway holds. */
export function publicEscrow(e: Escrow): Escrow {
  const copy = { ...e };
  delete copy.preimage;
  return copy;
}

export const FINAL_STATES: ReadonlySet<Escrow['state']> = new Set(['released', 'refunded', 'expired']);

/** Escrow records with their indexes: open ones, and by payer, payee and age. */
export const escrowIndex = new RecordIndex<Escrow>(
  'escrow' satisfies keyof typeof INDEXED,
  escrowCodec,
  (e) => [e.payerAccountId, e.payeeAccountId],
  (e) => FINAL_STATES.has(e.state),
);
