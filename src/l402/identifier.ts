/** L402 macaroon identifier: uint16 version 0 ‖ 32-byte payment hash ‖ 32-byte token id (66 bytes). */
export interface L402Identifier {
  version: 0;
  paymentHash: Buffer;
  tokenId: Buffer;
}

export const IDENTIFIER_LENGTH = 66;

export function encodeIdentifier(paymentHash: Buffer, tokenId: Buffer): Buffer {
  if (paymentHash.length !== 32 || tokenId.length !== 32)
    throw new Error('payment hash and token id must be 32 bytes');
  return Buffer.concat([Buffer.from([0, 0]), paymentHash, tokenId]);
}

export function decodeIdentifier(id: Buffer): L402Identifier | undefined {
  if (id.length !== IDENTIFIER_LENGTH || id.readUInt16BE(0) !== 0) return undefined;
  return { version: 0, paymentHash: id.subarray(2, 34), tokenId: id.subarray(34, 66) };
}
