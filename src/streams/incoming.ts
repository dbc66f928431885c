import { msat } from '../domain/msat.js';
import type { IncomingStream } from './types.js';

export const incomingKey = (streamId: string): string => `streamin!${streamId}`;
export const inboxKey = (recipientId: string): string => `streaminbox!${recipientId}`;

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

export function encodeIncoming(s: IncomingStream): string {
  return JSON.stringify({ ...s, totalMsat: s.totalMsat.toString() });
}

export function decodeIncoming(raw: string): IncomingStream {
  const o = JSON.parse(raw) as IncomingStream & { totalMsat: string };
  return { ...o, totalMsat: msat(o.totalMsat) };
}
