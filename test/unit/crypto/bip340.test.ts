import { randomBytes } from 'node:crypto';
import * as ecc from 'tiny-secp256k1';
import { describe, expect, it } from 'vitest';
import { schnorrSign, schnorrVerify, verifierName, xOnlyOf } from '../../../src/crypto/bip340.js';
import { nativeVerify } from '../../../src/crypto/native-verify.js';

const N = 'fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141';

describe('BIP340 verification', () => {
  const sk = randomBytes(32).toString('hex');
  const pk = xOnlyOf(sk);
  const cases = Array.from({ length: 50 }, (_, i) => {
    const digest = randomBytes(32);
    const sig = schnorrSign(digest, sk);
    // Every other case is broken: a flipped bit in the signature.
    const bad = i % 2 === 1 ? sig.slice(0, 20) + (sig[20] === 'a' ? 'b' : 'a') + sig.slice(21) : sig;
    return { digest, sig: bad, valid: i % 2 === 0 };
  });

  it(`agrees with the reference on valid and broken signatures (${verifierName()})`, () => {
    for (const c of cases) expect(schnorrVerify(c.digest, pk, c.sig)).toBe(c.valid);
  });

  it('the native addon, when built, gives exactly the WASM answers', () => {
    // CI builds it (npm ci runs build:native with libsecp256k1-dev); without it the WASM path is the one in use.
    expect(verifierName()).toBe(nativeVerify ? 'libsecp256k1 (native)' : 'tiny-secp256k1 (WASM)');
    for (const c of cases) {
      const wasm = ecc.verifySchnorr(c.digest, Buffer.from(pk, 'hex'), Buffer.from(c.sig, 'hex'));
      expect(wasm).toBe(c.valid);
      if (nativeVerify)
        expect(nativeVerify(c.digest, Buffer.from(pk, 'hex'), Buffer.from(c.sig, 'hex'))).toBe(wasm);
    }
  });

  it('answers false, never throws, for off-curve keys, out-of-range signatures and bad lengths', () => {
    const digest = randomBytes(32);
    const sig = schnorrSign(digest, sk);
    const offCurve = '00'.repeat(31) + '05'; // x = 5 is not on secp256k1
    expect(schnorrVerify(digest, offCurve, sig)).toBe(false);
    expect(schnorrVerify(digest, pk, N + sig.slice(64))).toBe(false); // r >= p range
    expect(schnorrVerify(digest, pk, sig.slice(0, 64) + N)).toBe(false); // s = n
    expect(schnorrVerify(digest, pk, 'ff'.repeat(64))).toBe(false);
    expect(schnorrVerify(digest, pk, sig.slice(2))).toBe(false);
    expect(schnorrVerify(digest.subarray(0, 31), pk, sig)).toBe(false);
    // Thousands of off-curve keys must not wear the verifier out (the WASM one leaks on throws).
    for (let i = 0; i < 4000; i++) expect(schnorrVerify(digest, offCurve, sig)).toBe(false);
    expect(schnorrVerify(digest, pk, sig)).toBe(true);
  });
});
