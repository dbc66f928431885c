import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as noble from '@noble/secp256k1';
import { describe, expect, it } from 'vitest';
import {
  requestDigest,
  schnorrVerify,
  signRequest,
  signResponse,
  responseDigest,
  xOnlyOf,
} from '../../../src/devices/envelope.js';
import { parseRequest, paramsOf } from '../../../src/devices/parse.js';
import { deriveDeviceKey } from '../../../src/devices/keys.js';
import { buildVectors } from '../../../src/devices/vectors.js';

// @noble/secp256k1 3.x needs a sha256 to be given; the device simulator does the same.
noble.hashes.sha256 = (msg) => new Uint8Array(createHash('sha256').update(msg).digest());

type Vec = { envelope: Record<string, unknown>; digest: string; signature: string; message: string };
const vectors = JSON.parse(readFileSync('firmware-bridge/test/vectors.json', 'utf8')) as {
  requests: Vec[];
  responses: Vec[];
  events: Vec[];
  gateway: { id: string };
  invalid: { kind: string; message: string; signature: string; pubkey: string }[];
};

describe('device envelopes (PROTOCOL.md v1)', () => {
  it('the committed vectors are exactly what the implementation produces (regenerate: npm run vectors)', () => {
    expect(JSON.parse(readFileSync('firmware-bridge/test/vectors.json', 'utf8'))).toEqual(
      JSON.parse(JSON.stringify(buildVectors())),
    );
  });

  it('every vector signature verifies with an independent BIP340 implementation (@noble/secp256k1)', () => {
    for (const v of vectors.requests) {
      const pub = Buffer.from(v.envelope['d'] as string, 'hex');
      expect(noble.schnorr.verify(Buffer.from(v.signature, 'hex'), Buffer.from(v.digest, 'hex'), pub)).toBe(
        true,
      );
    }
    for (const v of [...vectors.responses, ...vectors.events]) {
      const pub = Buffer.from(vectors.gateway.id, 'hex');
      expect(noble.schnorr.verify(Buffer.from(v.signature, 'hex'), Buffer.from(v.digest, 'hex'), pub)).toBe(
        true,
      );
    }
  });

  it('rejects the invalid vectors', () => {
    for (const bad of vectors.invalid) {
      const tag = bad.kind === 'request' ? 'coulomb/device/request/v1' : 'coulomb/device/response/v1';
      const t = createHash('sha256').update(tag).digest();
      const digest = createHash('sha256')
        .update(t)
        .update(t)
        .update(Buffer.from(bad.message, 'hex'))
        .digest();
      expect(schnorrVerify(digest, bad.pubkey, bad.signature)).toBe(false);
    }
  });

  it('binds every field: changing any one breaks the signature', () => {
    const key = '11'.repeat(32);
    const e = signRequest({ c: 5, t: 100, m: 'pay', p: '{"a":1}', k: 'x' }, key);
    const { s, ...unsigned } = e;
    expect(schnorrVerify(requestDigest(unsigned), e.d, s)).toBe(true);
    for (const changed of [
      { c: 6 },
      { t: 101 },
      { m: 'paz' },
      { p: '{"a":2}' },
      { k: 'y' },
      { k: undefined },
    ]) {
      const other = { ...unsigned, ...changed };
      if (changed.k === undefined && 'k' in changed) delete other.k;
      expect(schnorrVerify(requestDigest(other), e.d, s)).toBe(false);
    }
    const r = signResponse({ d: e.d, c: 5, t: 101, ok: true, b: '{}' }, '22'.repeat(32));
    const { s: rs, ...ru } = r;
    expect(schnorrVerify(responseDigest(ru), xOnlyOf('22'.repeat(32)), rs)).toBe(true);
    expect(schnorrVerify(responseDigest({ ...ru, ok: false }), r.g, rs)).toBe(false);
  });

  it('parses well-formed envelopes and refuses malformed ones with protocol codes', () => {
    const e = signRequest({ c: 1, t: 1, m: 'balance', p: '' }, '33'.repeat(32));
    expect(parseRequest(JSON.parse(JSON.stringify(e)))).toEqual(e);
    expect(paramsOf(e)).toEqual({});
    const cases: [unknown, string][] = [
      [null, 'BAD_ENVELOPE'],
      [{ ...e, v: 2 }, 'UNSUPPORTED_VERSION'],
      [{ ...e, d: 'ZZ' }, 'BAD_ENVELOPE'],
      [{ ...e, c: 0 }, 'BAD_ENVELOPE'],
      [{ ...e, c: 1.5 }, 'BAD_ENVELOPE'],
      [{ ...e, m: 'Pay Now' }, 'BAD_ENVELOPE'],
      [{ ...e, p: 'x'.repeat(4097) }, 'BAD_ENVELOPE'],
      [{ ...e, s: '00' }, 'BAD_ENVELOPE'],
      [{ ...e, extra: 1 }, 'BAD_ENVELOPE'],
    ];
    for (const [raw, code] of cases)
      expect(() => parseRequest(raw)).toThrow(expect.objectContaining({ code }));
    expect(() => paramsOf({ ...e, p: '[1]' })).toThrow(expect.objectContaining({ code: 'INVALID_PARAMS' }));
  });

  it('derives device keys from an operator mnemonic along m/7720h/0h/<index>h', () => {
    const m = 'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about';
    const k0 = deriveDeviceKey(m, 0);
    expect(k0).toMatch(/^[0-9a-f]{64}$/);
    expect(deriveDeviceKey(m, 1)).not.toBe(k0);
    expect(deriveDeviceKey(m, 0, 'passphrase')).not.toBe(k0);
    expect(() => deriveDeviceKey('not a mnemonic', 0)).toThrow(
      expect.objectContaining({ code: 'INVALID_PARAMS' }),
    );
  });
});
