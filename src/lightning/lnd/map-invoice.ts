import { msat } from '../../domain/msat.js';
import type { Invoice, InvoiceHtlc, InvoiceState, TlvRecord } from '../types.js';

/** The invoice shape ln-service returns from getInvoice, subscribeToInvoice(s) and create calls. */
export interface RawInvoice {
  id: string;
  secret?: string;
  request?: string;
  description?: string;
  mtokens?: string | number;
  received_mtokens?: string;
  is_confirmed?: boolean;
  is_held?: boolean;
  is_canceled?: boolean;
  is_push?: boolean;
  created_at: string;
  expires_at?: string;
  confirmed_at?: string;
  cltv_delta?: number;
  index?: number;
  confirmed_index?: number;
  payments?: RawInvoiceHtlc[];
}

interface RawInvoiceHtlc {
  mtokens: string;
  is_confirmed: boolean;
  is_held: boolean;
  is_canceled: boolean;
  messages?: { type: string; value: string }[];
  timeout?: number;
}

const ZERO_PREIMAGE = '0'.repeat(64);

export function mapState(raw: Pick<RawInvoice, 'is_confirmed' | 'is_held' | 'is_canceled'>): InvoiceState {
  if (raw.is_confirmed) return 'settled';
  if (raw.is_canceled) return 'canceled';
  if (raw.is_held) return 'accepted';
  return 'open';
}

function mapHtlc(raw: RawInvoiceHtlc): InvoiceHtlc {
  const records: TlvRecord[] = (raw.messages ?? []).map((m) => ({
    type: BigInt(m.type),
    value: m.value.toLowerCase(),
  }));
  const state = raw.is_confirmed ? 'settled' : raw.is_canceled ? 'canceled' : 'accepted';
  return { amountMsat: msat(raw.mtokens), state, records, expiryHeight: raw.timeout ?? 0 };
}

export function mapInvoice(raw: RawInvoice): Invoice {
  const createdAt = new Date(raw.created_at);
  const invoice: Invoice = {
    paymentHash: raw.id,
    description: raw.description ?? '',
    amountMsat: msat(String(raw.mtokens ?? '0')),
    receivedMsat: msat(raw.received_mtokens ?? '0'),
    state: mapState(raw),
    isKeysend: raw.is_push === true,
    createdAt,
    expiresAt: raw.expires_at ? new Date(raw.expires_at) : createdAt,
    cltvDelta: raw.cltv_delta ?? 0,
    addIndex: raw.index ?? 0,
    settleIndex: raw.confirmed_index ?? 0,
    htlcs: (raw.payments ?? []).map(mapHtlc),
  };
  if (raw.secret && raw.secret !== ZERO_PREIMAGE) invoice.preimage = raw.secret;
  if (raw.request) invoice.request = raw.request;
  if (raw.confirmed_at) invoice.settledAt = new Date(raw.confirmed_at);
  return invoice;
}
