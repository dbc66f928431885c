import { createHmac } from 'node:crypto';

/**
 * Macaroon V2 binary format (libmacaroons / gopkg.in/macaroon.v2 compatible), first-party
 * caveats only, with node:crypto HMAC-SHA256. Only what L402 needs, fast enough for the hot path.
 */
export interface Macaroon {
  location: string;
  identifier: Buffer;
  caveats: string[];
  signature: Buffer;
}

const FIELD_EOS = 0;
const FIELD_LOCATION = 1;
const FIELD_IDENTIFIER = 2;
const FIELD_VID = 4;
const FIELD_SIGNATURE = 6;
const KEY_GENERATOR = Buffer.from('macaroons-key-generator');

export class MacaroonFormatError extends Error {}

const hmac = (key: Buffer, data: Buffer | string): Buffer => createHmac('sha256', key).update(data).digest();

/** The signing key libmacaroons derives from a root key. */
export function derivedKey(rootKey: Buffer): Buffer {
  return hmac(KEY_GENERATOR, rootKey);
}

/** The signature chain: HMAC over the identifier, then over each caveat in order. */
export function signatureOf(rootKey: Buffer, identifier: Buffer, caveats: readonly string[]): Buffer {
  let sig = hmac(derivedKey(rootKey), identifier);
  for (const c of caveats) sig = hmac(sig, c);
  return sig;
}

export function mint(
  rootKey: Buffer,
  identifier: Buffer,
  location: string,
  caveats: readonly string[],
): Macaroon {
  return {
    location,
    identifier,
    caveats: [...caveats],
    signature: signatureOf(rootKey, identifier, caveats),
  };
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

function field(type: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), varint(data.length), data]);
}

export function encodeV2(m: Macaroon): Buffer {
  const parts: Buffer[] = [Buffer.from([2])];
  if (m.location) parts.push(field(FIELD_LOCATION, Buffer.from(m.location)));
  parts.push(field(FIELD_IDENTIFIER, m.identifier), Buffer.from([FIELD_EOS]));
  for (const c of m.caveats) parts.push(field(FIELD_IDENTIFIER, Buffer.from(c)), Buffer.from([FIELD_EOS]));
  parts.push(Buffer.from([FIELD_EOS]), field(FIELD_SIGNATURE, m.signature));
  return Buffer.concat(parts);
}

export function decodeV2(buf: Buffer): Macaroon {
  let pos = 0;
  const fail = (why: string): never => {
    throw new MacaroonFormatError(`malformed macaroon: ${why}`);
  };
  const readVarint = (): number => {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= buf.length) fail('truncated length');
      const b = buf[pos++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    return fail('length too long');
  };
  const peek = (): number => (pos < buf.length ? buf[pos]! : fail('truncated'));
  const readField = (type: number): Buffer => {
    if (peek() !== type) fail(`expected field ${type}, got ${peek()}`);
    pos += 1;
    const len = readVarint();
    if (pos + len > buf.length) fail('field overruns the data');
    const data = buf.subarray(pos, pos + len);
    pos += len;
    return data;
  };
  const eos = (): void => {
    if (peek() !== FIELD_EOS) fail('expected end of section');
    pos += 1;
  };
  if (buf[0] !== 2) fail('not a version 2 macaroon');
  pos = 1;
  const location = peek() === FIELD_LOCATION ? readField(FIELD_LOCATION).toString('utf8') : '';
  const identifier = Buffer.from(readField(FIELD_IDENTIFIER));
  eos();
  const caveats: string[] = [];
  while (peek() !== FIELD_EOS) {
    if (peek() === FIELD_LOCATION) readField(FIELD_LOCATION);
    const cid = readField(FIELD_IDENTIFIER);
    if (peek() === FIELD_VID) fail('third-party caveats are not supported');
    eos();
    caveats.push(cid.toString('utf8'));
    if (caveats.length > 64) fail('too many caveats');
  }
  eos();
  const signature = Buffer.from(readField(FIELD_SIGNATURE));
  if (signature.length !== 32) fail('signature must be 32 bytes');
  if (pos !== buf.length) fail('trailing data');
  return { location, identifier, caveats, signature };
}
