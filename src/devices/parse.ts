import {
  MAX_IDEMPOTENCY_BYTES,
  MAX_METHOD_BYTES,
  MAX_PARAMS_BYTES,
  PROTOCOL_VERSION,
  type RequestEnvelope,
} from './envelope.js';
import { DeviceError, DeviceErrorCode } from './errors.js';

const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;
const METHOD = /^[a-z][a-z0-9_.]{0,31}$/;
const IDEM = /^[\x21-\x7e]{1,64}$/;

const bad = (message: string): DeviceError => new DeviceError(DeviceErrorCode.BAD_ENVELOPE, message);

/**
 * Checks the shape of a request envelope (no signature or state checks): every field present,
 * typed and within its limits, nothing else. Errors carry the protocol's codes.
 */
export function parseRequest(raw: unknown): RequestEnvelope {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw bad('the envelope must be a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!['v', 'd', 'c', 't', 'm', 'p', 'k', 's'].includes(k)) throw bad(`unknown field "${k}"`);
  if (o['v'] !== PROTOCOL_VERSION)
    throw new DeviceError(
      DeviceErrorCode.UNSUPPORTED_VERSION,
      `protocol version ${String(o['v'])} is not supported; use ${PROTOCOL_VERSION}`,
    );
  const { d, c, t, m, p, k, s } = o;
  if (typeof d !== 'string' || !HEX64.test(d))
    throw bad('d must be the device’s x-only public key (64 lowercase hex)');
  if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 1)
    throw bad('c must be a positive integer counter');
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) throw bad('t must be unix seconds');
  if (typeof m !== 'string' || !METHOD.test(m) || m.length > MAX_METHOD_BYTES)
    throw bad('m must be a method name');
  if (typeof p !== 'string' || Buffer.byteLength(p, 'utf8') > MAX_PARAMS_BYTES)
    throw bad(`p must be the params JSON text, at most ${MAX_PARAMS_BYTES} bytes`);
  if (k !== undefined && (typeof k !== 'string' || !IDEM.test(k) || k.length > MAX_IDEMPOTENCY_BYTES))
    throw bad('k must be 1 to 64 printable ASCII characters');
  if (typeof s !== 'string' || !HEX128.test(s)) throw bad('s must be a BIP340 signature (128 lowercase hex)');
  return { v: PROTOCOL_VERSION, d, c, t, m, p, ...(k !== undefined ? { k: k as string } : {}), s };
}

/** The params object of a request; the text must be a JSON object. */
export function paramsOf(e: RequestEnvelope): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(e.p === '' ? '{}' : e.p);
  } catch {
    throw new DeviceError(DeviceErrorCode.INVALID_PARAMS, 'p is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new DeviceError(DeviceErrorCode.INVALID_PARAMS, 'p must be a JSON object');
  return v as Record<string, unknown>;
}
