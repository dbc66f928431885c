import { createHash } from 'node:crypto';
import { isXOnlyKey, schnorrSign, schnorrVerify, taggedHash, xOnlyOf } from '../crypto/bip340.js';

export { isXOnlyKey } from '../crypto/bip340.js';

export const RECEIPT_TAG = 'coulomb/escrow-receipt/v1';

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

/** What a payee's key signs to prove delivery: binds the escrow, its payment hash and the payload. */
export function receiptDigest(escrowId: string, paymentHash: string, payload: string): Buffer {
  return taggedHash(
    RECEIPT_TAG,
    Buffer.concat([
      Buffer.from(escrowId, 'utf8'),
      Buffer.from([0]),
      Buffer.from(paymentHash, 'hex'),
      sha256(Buffer.from(payload, 'utf8')),
    ]),
  );
}

/** Verifies a BIP340 signature over the receipt digest with an x-only public key (hex). */
export function verifyReceipt(
  pubkeyHex: string,
  escrowId: string,
  paymentHash: string,
  payload: string,
  signatureHex: string,
): boolean {
  return (
    isXOnlyKey(pubkeyHex) &&
    schnorrVerify(receiptDigest(escrowId, paymentHash, payload), pubkeyHex, signatureHex)
  );
}

/** Signs a receipt (device or test side): returns the signature as hex. */
export function signReceipt(
  secretKeyHex: string,
  escrowId: string,
  paymentHash: string,
  payload: string,
): string {
  return schnorrSign(receiptDigest(escrowId, paymentHash, payload), secretKeyHex);
}

/** The x-only public key (hex) of a secret key. */
export const xOnlyPublicKey = xOnlyOf;
