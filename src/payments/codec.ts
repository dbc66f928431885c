import { msat } from '../domain/msat.js';
import type { Approval, InvoiceRecord, Payment } from './types.js';

// Records are JSON with msat amounts as decimal strings.

const AMOUNTS = [
  'amountMsat',
  'feeLimitMsat',
  'feeMsat',
  'receivedMsat',
  'lightningReceivedMsat',
  'heldByOperatorMsat',
] as const;

export function encode(value: Payment | InvoiceRecord | Approval): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

function decodeAmounts<T>(raw: string): T {
  const o = JSON.parse(raw) as Record<string, unknown>;
  for (const k of AMOUNTS) if (typeof o[k] === 'string') o[k] = msat(o[k] as string);
  return o as T;
}

export const decodePayment = (raw: string): Payment => decodeAmounts<Payment>(raw);
export const decodeInvoice = (raw: string): InvoiceRecord => decodeAmounts<InvoiceRecord>(raw);
export const decodeApproval = (raw: string): Approval => decodeAmounts<Approval>(raw);

export const keys = {
  invoice: (hash: string) => `inv!${hash}`,
  /** The durable intent to cancel in LND an invoice settled internally; deleted once LND confirms. */
  cancelIntent: (hash: string) => `invcancel!${hash}`,
};
