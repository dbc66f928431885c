import { getInvoice } from 'ln-service';
import { isHex32 } from '../../domain/hex.js';
import { LightningError, LightningErrorCode } from '../errors.js';
import type { Hex, Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { mapInvoice, type RawInvoice } from './map-invoice.js';
import { lndCall } from './map-error.js';

export function assertHash(value: string, what = 'payment hash'): void {
  if (!isHex32(value)) {
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      `${what} must be 64 lowercase hex characters`,
    );
  }
}

export async function lookupInvoice({ lnd }: LndContext, paymentHash: Hex): Promise<Invoice> {
  assertHash(paymentHash);
  const raw = await lndCall('lookupInvoice', () => getInvoice({ lnd, id: paymentHash }));
  return mapInvoice(raw as unknown as RawInvoice);
}
