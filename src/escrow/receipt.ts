import { createHash } from 'node:crypto';
import * as ecc from 'tiny-secp256k1';

export const RECEIPT_TAG = 'coulomb/escrow-receipt/v1';

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** BIP340 tagged hash: sha256(sha256(tag) ‖ sha256(tag) ‖ msg). */
export function taggedHash(tag: string, msg: Uint8Array): Buffer {
  const t = sha256(Buffer.from(tag, 'utf8'));
  return sha256(t, t, msg);
}

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

export function isXOnlyKey(hex: string): boolean {
  return /^[0-9a-f]{64}$/.test(hex) && ecc.isXOnlyPoint(Buffer.from(hex, 'hex'));
}

/** Verifies a BIP340 signature over the receipt digest with an x-only public key (hex). */
export function verifyReceipt(
  pubkeyHex: string,
  escrowId: string,
  paymentHash: string,
  payload: string,
  signatureHex: string,
): boolean {
  if (!isXOnlyKey(pubkeyHex) || !/^[0-9a-f]{128}$/.test(signatureHex)) return false;
  return ecc.verifySchnorr(
    receiptDigest(escrowId, paymentHash, payload),
    Buffer.from(pubkeyHex, 'hex'),
    Buffer.from(signatureHex, 'hex'),
  );
}

/** Signs a receipt (device or test side): returns the signature as hex. */
export function signReceipt(
  secretKeyHex: string,
  escrowId: string,
  paymentHash: string,
  payload: string,
): string {
  const sig = ecc.signSchnorr(
    receiptDigest(escrowId, paymentHash, payload),
    Buffer.from(secretKeyHex, 'hex'),
  );
  return Buffer.from(sig).toString('hex');
}

/** The x-only public key (hex) of a secret key. */
export function xOnlyPublicKey(secretKeyHex: string): string {
  const p = ecc.xOnlyPointFromScalar(Buffer.from(secretKeyHex, 'hex'));
  return Buffer.from(p).toString('hex');
}
