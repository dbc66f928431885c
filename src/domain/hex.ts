import { createHash } from 'node:crypto';

const HEX32 = /^[0-9a-f]{64}$/;
const HEX = /^(?:[0-9a-f]{2})*$/;
const PUBKEY = /^0[23][0-9a-f]{64}$/;

/** 32-byte value as 64 lowercase hex characters (payment hashes, preimages). */
export function isHex32(value: string): boolean {
  return HEX32.test(value);
}

export function isHex(value: string): boolean {
  return HEX.test(value);
}

/** 33-byte compressed secp256k1 public key in lowercase hex (node ids). */
export function isPubkey(value: string): boolean {
  return PUBKEY.test(value);
}

/** The payment hash of a preimage (both 64 lowercase hex). */
export function paymentHashOf(preimageHex: string): string {
  return createHash('sha256').update(Buffer.from(preimageHex, 'hex')).digest('hex');
}

/** True when `preimageHex` is a well-formed preimage of `paymentHash`. */
export function provesPayment(preimageHex: string, paymentHash: string): boolean {
  return isHex32(preimageHex) && paymentHashOf(preimageHex) === paymentHash;
}
