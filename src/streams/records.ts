import type { TlvRecord } from '../lightning/types.js';

/** bLIP-10: UTF-8 JSON describing a value-for-value payment (podcast apps). */
export const BLIP10_RECORD = 7629169n;
/** Coulomb's own stream record: version ‖ stream id ‖ seq (u64 BE) ‖ recipient id (zero: none). */
export const STREAM_RECORD = 133773310n;
export const STREAM_RECORD_VERSION = 1;
const STREAM_RECORD_BYTES = 1 + 16 + 8 + 16;
/** A bLIP-10 record larger than this is not ours: not parsed. */
const MAX_BLIP10_BYTES = 4096;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function uuidToBytes(uuid: string): Buffer {
  if (!isUuid(uuid)) throw new Error(`not a lowercase UUID: ${uuid}`);
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

export function bytesToUuid(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** What one stream payment says about itself. */
export interface StreamPaymentInfo {
  streamId: string;
  seq: number;
  recipientId?: string;
  /** This payment. */
  valueMsat: bigint;
  /** Paid so far, this payment included. */
  totalMsat: bigint;
  activeSeconds: number;
}

/** The bLIP-10 JSON, hex encoded. Amounts are JSON integers written from bigints (no rounding). */
export function encodeBlip10(p: StreamPaymentInfo): string {
  const json =
    `{"action":"stream","app_name":"coulomb","value_msat":${p.valueMsat},` +
    `"value_msat_total":${p.totalMsat},"ts":${p.activeSeconds},"uuid":${JSON.stringify(p.streamId)},` +
    `"seq":${p.seq}` +
    (p.recipientId !== undefined ? `,"recipient":${JSON.stringify(p.recipientId)}` : '') +
    '}';
  return Buffer.from(json, 'utf8').toString('hex');
}

export function encodeStreamRecord(p: Pick<StreamPaymentInfo, 'streamId' | 'seq' | 'recipientId'>): string {
  const buf = Buffer.alloc(STREAM_RECORD_BYTES);
  buf.writeUInt8(STREAM_RECORD_VERSION, 0);
  uuidToBytes(p.streamId).copy(buf, 1);
  buf.writeBigUInt64BE(BigInt(p.seq), 17);
  uuidToBytes(p.recipientId ?? ZERO_UUID).copy(buf, 25);
  return buf.toString('hex');
}

/** Both records of a stream payment, ready for keysend. */
export function streamRecords(p: StreamPaymentInfo): TlvRecord[] {
  return [
    { type: BLIP10_RECORD, value: encodeBlip10(p) },
    { type: STREAM_RECORD, value: encodeStreamRecord(p) },
  ];
}

/** Who a received stream payment is for, read from our record or else from bLIP-10. */
export interface StreamTag {
  source: 'coulomb' | 'blip10';
  streamId?: string;
  seq?: number;
  recipientId?: string;
}

export function decodeStreamRecord(hex: string): StreamTag | undefined {
  if (hex.length !== STREAM_RECORD_BYTES * 2 || !/^[0-9a-f]+$/.test(hex)) return undefined;
  const buf = Buffer.from(hex, 'hex');
  if (buf.readUInt8(0) !== STREAM_RECORD_VERSION) return undefined;
  const seq = buf.readBigUInt64BE(17);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
  const recipientId = bytesToUuid(buf.subarray(25, 41));
  return {
    source: 'coulomb',
    streamId: bytesToUuid(buf.subarray(1, 17)),
    seq: Number(seq),
    ...(recipientId !== ZERO_UUID ? { recipientId } : {}),
  };
}

export function decodeBlip10(hex: string): StreamTag | undefined {
  if (hex.length > MAX_BLIP10_BYTES * 2 || !/^(?:[0-9a-f]{2})*$/.test(hex)) return undefined;
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(hex, 'hex').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  const uuid = typeof r['uuid'] === 'string' ? r['uuid'].toLowerCase() : undefined;
  const recipient = typeof r['recipient'] === 'string' ? r['recipient'].toLowerCase() : undefined;
  const seq = r['seq'];
  const tag: StreamTag = {
    source: 'blip10',
    ...(uuid !== undefined && isUuid(uuid) ? { streamId: uuid } : {}),
    ...(recipient !== undefined && isUuid(recipient) ? { recipientId: recipient } : {}),
    ...(typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? { seq } : {}),
  };
  return tag.streamId !== undefined || tag.recipientId !== undefined ? tag : undefined;
}

/** Reads a stream tag from a payment's records: Coulomb's record first, bLIP-10 otherwise. */
export function readStreamTag(records: readonly TlvRecord[]): StreamTag | undefined {
  const own = records.find((r) => r.type === STREAM_RECORD);
  const tag = own ? decodeStreamRecord(own.value) : undefined;
  if (tag) return tag;
  const blip = records.find((r) => r.type === BLIP10_RECORD);
  return blip ? decodeBlip10(blip.value) : undefined;
}
