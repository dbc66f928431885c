import { msat } from '../domain/msat.js';
import { RecordIndex } from '../ledger/record-index.js';
import type { Escrow } from './types.js';

export const escrowKey = (id: string): string => `escrow!${id}`;
export const receiptKeyKey = (accountId: string, pubkey: string): string => `rkey!${accountId}!${pubkey}`;

export function encodeEscrow(e: Escrow): string {
  return JSON.stringify({ ...e, amountMsat: e.amountMsat.toString() });
}

export function decodeEscrow(raw: string): Escrow {
  const o = JSON.parse(raw) as Escrow & { amountMsat: string };
  return { ...o, amountMsat: msat(o.amountMsat) };
}

/** An escrow as its parties see it: never the preimage the gateway holds. */
export function publicEscrow(e: Escrow): Escrow {
  const copy = { ...e };
  delete copy.preimage;
  return copy;
}

export const FINAL_STATES: ReadonlySet<Escrow['state']> = new Set(['released', 'refunded', 'expired']);

/** Escrow records with their indexes: open ones, and by payer, payee and age. */
export const escrowIndex = new RecordIndex<Escrow>(
  'escrow',
  { encode: encodeEscrow, decode: decodeEscrow },
  (e) => [e.payerAccountId, e.payeeAccountId],
  (e) => FINAL_STATES.has(e.state),
);
