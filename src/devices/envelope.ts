import { schnorrSign, taggedHash, xOnlyOf } from '../crypto/bip340.js';

export { schnorrSign, schnorrVerify, taggedHash, xOnlyOf } from '../crypto/bip340.js';

/** Protocol version carried in every envelope (firmware-bridge/PROTOCOL.md). */
export const PROTOCOL_VERSION = 1;
export const TAGS = {
  request: 'coulomb/device/request/v1',
  response: 'coulomb/device/response/v1',
  event: 'coulomb/device/event/v1',
  enroll: 'coulomb/device/enroll/v1',
  connect: 'coulomb/device/mqtt-connect/v1',
} as const;
export const MAX_PARAMS_BYTES = 4096;
export const MAX_METHOD_BYTES = 32;
export const MAX_IDEMPOTENCY_BYTES = 64;

/** A device request as it travels (JSON). `p` is the params JSON text exactly as signed. */
export interface RequestEnvelope {
  v: number;
  /** Device id: its BIP340 x-only public key, 64 lowercase hex. */
  d: string;
  /** Strictly increasing per device. */
  c: number;
  /** Unix seconds when the device made the request. */
  t: number;
  m: string;
  p: string;
  /** Optional idempotency key: a retry with the same key gets the first answer. */
  k?: string;
  /** BIP340 signature, 128 lowercase hex. */
  s: string;
}

/** The gateway's answer to one request, signed with the key devices pin. */
export interface ResponseEnvelope {
  v: number;
  g: string;
  d: string;
  /** The counter of the request this answers. */
  c: number;
  t: number;
  ok: boolean;
  /** Result JSON text when ok, else `{"code":…,"message":…}`. */
  b: string;
  s: string;
}

/** Something the gateway pushes to a device (a buyer paid, actuate, stop), signed likewise. */
export interface EventEnvelope {
  v: number;
  g: string;
  d: string;
  /** Per-device event sequence number, increasing. */
  n: number;
  t: number;
  e: string;
  b: string;
  s: string;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
const u8 = (n: number): Buffer => Buffer.from([n]);
const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const text = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The bytes a device signs for a request (before tagged hashing). */
export function requestMessage(e: Omit<RequestEnvelope, 's'>): Buffer {
  const method = text(e.m);
  const params = text(e.p);
  const idem = text(e.k ?? '');
  return Buffer.concat([
    u8(e.v),
    hex(e.d),
    u64(e.c),
    u64(e.t),
    u8(method.length),
    method,
    u32(params.length),
    params,
    u8(idem.length),
    idem,
  ]);
}

export function responseMessage(e: Omit<ResponseEnvelope, 's'>): Buffer {
  const body = text(e.b);
  return Buffer.concat([
    u8(e.v),
    hex(e.g),
    hex(e.d),
    u64(e.c),
    u64(e.t),
    u8(e.ok ? 1 : 0),
    u32(body.length),
    body,
  ]);
}

export function eventMessage(e: Omit<EventEnvelope, 's'>): Buffer {
  const type = text(e.e);
  const body = text(e.b);
  return Buffer.concat([
    u8(e.v),
    hex(e.g),
    hex(e.d),
    u64(e.n),
    u64(e.t),
    u8(type.length),
    type,
    u32(body.length),
    body,
  ]);
}

export function enrollMessage(deviceId: string, code: string): Buffer {
  const c = text(code);
  return Buffer.concat([u8(PROTOCOL_VERSION), hex(deviceId), u8(c.length), c]);
}

/** The bytes a device signs to connect to the MQTT broker: its id and the time. */
export function connectMessage(deviceId: string, t: number): Buffer {
  return Buffer.concat([u8(PROTOCOL_VERSION), hex(deviceId), u64(t)]);
}

export const connectDigest = (deviceId: string, t: number): Buffer =>
  taggedHash(TAGS.connect, connectMessage(deviceId, t));

export const requestDigest = (e: Omit<RequestEnvelope, 's'>): Buffer =>
  taggedHash(TAGS.request, requestMessage(e));
export const responseDigest = (e: Omit<ResponseEnvelope, 's'>): Buffer =>
  taggedHash(TAGS.response, responseMessage(e));
export const eventDigest = (e: Omit<EventEnvelope, 's'>): Buffer => taggedHash(TAGS.event, eventMessage(e));
export const enrollDigest = (deviceId: string, code: string): Buffer =>
  taggedHash(TAGS.enroll, enrollMessage(deviceId, code));

/** BIP340 signature (hex) of a 32-byte digest; `aux` is the auxiliary randomness (32 bytes). */

export function signRequest(
  fields: Omit<RequestEnvelope, 's' | 'v' | 'd'>,
  secretKeyHex: string,
  aux?: Uint8Array,
): RequestEnvelope {
  const unsigned = { v: PROTOCOL_VERSION, d: xOnlyOf(secretKeyHex), ...fields };
  return { ...unsigned, s: schnorrSign(requestDigest(unsigned), secretKeyHex, aux) };
}

export function signResponse(
  fields: Omit<ResponseEnvelope, 's' | 'v' | 'g'>,
  gatewayKeyHex: string,
  aux?: Uint8Array,
): ResponseEnvelope {
  const unsigned = { v: PROTOCOL_VERSION, g: xOnlyOf(gatewayKeyHex), ...fields };
  return { ...unsigned, s: schnorrSign(responseDigest(unsigned), gatewayKeyHex, aux) };
}

export function signEvent(
  fields: Omit<EventEnvelope, 's' | 'v' | 'g'>,
  gatewayKeyHex: string,
  aux?: Uint8Array,
): EventEnvelope {
  const unsigned = { v: PROTOCOL_VERSION, g: xOnlyOf(gatewayKeyHex), ...fields };
  return { ...unsigned, s: schnorrSign(eventDigest(unsigned), gatewayKeyHex, aux) };
}
