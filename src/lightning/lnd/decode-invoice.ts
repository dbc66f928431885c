import { decodePaymentRequest } from 'ln-service';
import { msat } from '../../domain/msat.js';
import { LightningError, LightningErrorCode } from '../errors.js';
import type { DecodedInvoice } from '../types.js';
import type { LndContext } from './context.js';
import { lndCall } from './map-error.js';

const BOLT11 = /^ln(bc|tb|bcrt|tbs)[0-9a-z]+$/i;
const NETWORKS: Record<string, string> = { bc: 'mainnet', tb: 'testnet', bcrt: 'regtest', tbs: 'signet' };

export async function decodeInvoice({ lnd }: LndContext, request: string): Promise<DecodedInvoice> {
  const match = BOLT11.exec(request.trim());
  if (!match) throw new LightningError(LightningErrorCode.INVALID_REQUEST, 'not a BOLT11 payment request');
  const decoded = await lndCall('decodeInvoice', () =>
    decodePaymentRequest({ lnd, request: request.trim() }),
  ).catch((err: LightningError) => {
    if (err.code === LightningErrorCode.INTERNAL || err.code === LightningErrorCode.INVALID_ARGUMENT) {
      throw new LightningError(
        LightningErrorCode.INVALID_REQUEST,
        `invalid BOLT11 payment request: ${err.message}`,
      );
    }
    throw err;
  });
  const expiresAt = new Date(decoded.expires_at);
  const out: DecodedInvoice = {
    paymentHash: decoded.id,
    destination: decoded.destination,
    amountMsat: msat(decoded.mtokens ?? '0'),
    description: decoded.description ?? '',
    expiresAt,
    isExpired: expiresAt.getTime() <= Date.now(),
    cltvDelta: decoded.cltv_delta ?? 18,
    network: NETWORKS[(match[1] ?? '').toLowerCase()] ?? 'unknown',
  };
  if (decoded.description_hash) out.descriptionHash = decoded.description_hash;
  return out;
}
