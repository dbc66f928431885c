import { parsePaymentRequest } from 'ln-service';
import { msat } from '../../domain/msat.js';
import { LightningError, LightningErrorCode } from '../errors.js';
import type { DecodedInvoice } from '../types.js';

const NETWORKS: Record<string, string> = {
  bitcoin: 'mainnet',
  testnet: 'testnet',
  regtest: 'regtest',
  signet: 'signet',
};

/** Decodes a BOLT11 request locally (no LND round trip); a malformed one is LN_INVALID_REQUEST. */
export function decodeInvoice(request: string): DecodedInvoice {
  let parsed: ReturnType<typeof parsePaymentRequest>;
  try {
    parsed = parsePaymentRequest({ request: request.trim() });
  } catch (err) {
    throw new LightningError(
      LightningErrorCode.INVALID_REQUEST,
      `invalid BOLT11 payment request: ${(err as Error).message}`,
    );
  }
  const out: DecodedInvoice = {
    paymentHash: parsed.id,
    destination: parsed.destination,
    amountMsat: msat(parsed.mtokens ?? '0'),
    description: parsed.description ?? '',
    expiresAt: new Date(parsed.expires_at),
    isExpired: parsed.is_expired,
    cltvDelta: parsed.cltv_delta,
    network: NETWORKS[parsed.network] ?? parsed.network,
  };
  if (parsed.description_hash) out.descriptionHash = parsed.description_hash;
  return out;
}
