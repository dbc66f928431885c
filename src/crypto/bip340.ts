import { createHash, randomBytes } from 'node:crypto';
import * as ecc from 'tiny-secp256k1';
import { nativeVerify } from './native-verify.js';

/** Which implementation verifies signatures in this process. */
export const verifierName = (): string => (nativeVerify ? 'libsecp256k1 (native)' : 'tiny-secp256k1 (WASM)');

// BIP340 Schnorr signatures over tagged hashes. Verification goes through the native libsecp256k1
// addon (native/, built by `npm install` when libsecp256k1-dev is present, off with
// COULOMB_NATIVE_VERIFY=0), otherwise tiny-secp256k1 (libsecp256k1 in WASM); signing always uses
// tiny-secp256k1 (docs/BENCHMARKS.md has the verification rates).

const tagHashes = new Map<string, Buffer>();

/** BIP340 tagged hash: sha256(sha256(tag) ‖ sha256(tag) ‖ msg). */
export function taggedHash(tag: string, msg: Uint8Array): Buffer {
  let t = tagHashes.get(tag);
  if (!t) tagHashes.set(tag, (t = createHash('sha256').update(tag, 'utf8').digest()));
  return createHash('sha256').update(t).update(t).update(msg).digest();
}

export function isXOnlyKey(hex: string): boolean {
  return /^[0-9a-f]{64}$/.test(hex) && ecc.isXOnlyPoint(Buffer.from(hex, 'hex'));
}

/** BIP340 signature (hex) of a 32-byte digest; `aux` is the auxiliary randomness (32 bytes). */
export function schnorrSign(
  digest: Uint8Array,
  secretKeyHex: string,
  aux: Uint8Array = randomBytes(32),
): string {
  return Buffer.from(ecc.signSchnorr(digest, Buffer.from(secretKeyHex, 'hex'), aux)).toString('hex');
}

/** Verifies a BIP340 signature (hex) with an x-only public key (hex); malformed input is false. */
export function schnorrVerify(digest: Uint8Array, xOnlyHex: string, signatureHex: string): boolean {
  if (nativeVerify !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(xOnlyHex) || !/^[0-9a-f]{128}$/.test(signatureHex)) return false;
    return nativeVerify(digest, Buffer.from(xOnlyHex, 'hex'), Buffer.from(signatureHex, 'hex'));
  }
  // The key check must stay first: tiny-secp256k1 throws from WASM for off-curve keys and leaks
  // memory each time (thousands of them break it). Out-of-range r or s throw too: that is false.
  if (!isXOnlyKey(xOnlyHex) || !/^[0-9a-f]{128}$/.test(signatureHex)) return false;
  try {
    return ecc.verifySchnorr(digest, Buffer.from(xOnlyHex, 'hex'), Buffer.from(signatureHex, 'hex'));
  } catch {
    return false;
  }
}

/** The x-only public key (hex) of a secret key (hex). */
export function xOnlyOf(secretKeyHex: string): string {
  return Buffer.from(ecc.xOnlyPointFromScalar(Buffer.from(secretKeyHex, 'hex'))).toString('hex');
}
