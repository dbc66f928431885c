import { Type } from '@sinclair/typebox';
import { msat } from '../domain/msat.js';
import { MsatField, recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import type { Inbox, IncomingStream } from './types.js';

export const incomingKey = (streamId: string): string => `${PREFIXES.streamIncoming.prefix}${streamId}`;
export const inboxKey = (recipientId: string): string => `${PREFIXES.streamInbox.prefix}${recipientId}`;

/** Kept while an incoming stream flows (not lapsed): what a start loads. */
export const incomingOpenKey = (streamId: string): string =>
  `${PREFIXES.streamIncomingOpen.prefix}${streamId}`;
/** The listing cursor of an incoming stream: its first payment's time (15 digits) and its id. */
export const incomingCursor = (s: IncomingStream): string =>
  `${String(s.firstPaymentAt).padStart(15, '0')}!${s.streamId}`;
export const incomingByPrefix = (accountId: string): string =>
  `${PREFIXES.streamIncomingBy.prefix}${accountId}!`;
export const INCOMING_INDEX_MARK = `${PREFIXES.streamIncomingIndexMark.prefix}v1`;

/**
 * The summary's record and its open mark; `first` adds its listing entry (written once, when the
 * stream is first seen, so that a late payment moving `firstPaymentAt` does not list it twice).
 */
export function incomingRecords(s: IncomingStream, first: boolean): { key: string; value: string | null }[] {
  return [
    { key: incomingKey(s.streamId), value: encodeIncoming(s) },
    { key: incomingOpenKey(s.streamId), value: s.lapsed ? null : '' },
    ...(first ? [{ key: incomingByPrefix(s.accountId) + incomingCursor(s), value: s.streamId }] : []),
  ];
}

const incomingCodec: RecordCodec<IncomingStream> = recordCodec(
  'incoming stream',
  Type.Object({
    streamId: Type.String(),
    recipientId: Type.String(),
    accountId: Type.String(),
    totalMsat: MsatField,
    payments: Type.Number(),
    lastSeq: Type.Number(),
    missingSeqs: Type.Number(),
    firstPaymentAt: Type.Number(),
    lastPaymentAt: Type.Number(),
    lapsed: Type.Boolean(),
  }),
);
export const inboxCodec: RecordCodec<Inbox> = recordCodec(
  'stream inbox',
  Type.Object({
    recipientId: Type.String(),
    accountId: Type.String(),
    graceSeconds: Type.Number(),
    createdAt: Type.Number(),
  }),
);

/** One received payment of a stream, as the receiver books it. */
export interface ReceivedPayment {
  streamId: string;
  recipientId: string;
  accountId: string;
  amount: bigint;
  seq: number | undefined;
  /** When it settled (clock ms). */
  at: number;
}

/**
 * The summary after one more payment. Sequence numbers start at 1; a gap is counted as missing
 * (payments can fail on the way, or arrive out of order: a late one fills its gap again).
 */
export function withPayment(prev: IncomingStream | undefined, p: ReceivedPayment): IncomingStream {
  const payments = (prev?.payments ?? 0) + 1;
  const sequenced = (prev ? prev.lastSeq - prev.missingSeqs : 0) + (p.seq !== undefined ? 1 : 0);
  const lastSeq = Math.max(prev?.lastSeq ?? 0, p.seq ?? 0);
  return {
    streamId: p.streamId,
    recipientId: p.recipientId,
    accountId: p.accountId,
    totalMsat: msat((prev?.totalMsat ?? 0n) + p.amount),
    payments,
    lastSeq,
    missingSeqs: Math.max(0, lastSeq - sequenced),
    firstPaymentAt: Math.min(prev?.firstPaymentAt ?? p.at, p.at),
    lastPaymentAt: Math.max(prev?.lastPaymentAt ?? p.at, p.at),
    lapsed: prev?.lapsed ?? false,
  };
}

/** True when a stream that was flowing has had no payment for longer than the grace period. */
export function hasLapsed(s: IncomingStream, graceMs: number, now: number): boolean {
  return !s.lapsed && now - s.lastPaymentAt > graceMs;
}

export const encodeIncoming = (s: IncomingStream): string => incomingCodec.encode(s);
export const decodeIncoming = (raw: string): IncomingStream => incomingCodec.decode(raw);
