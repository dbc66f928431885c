import { cancelHodlInvoice } from 'ln-service';
import type { Hex } from '../types.js';
import type { LndContext } from './context.js';
import { assertHash } from './lookup-invoice.js';
import { lndCall } from './map-error.js';

/** Fails the held HTLCs back: the payer gets the funds back and the invoice can no longer be paid. */
export async function cancelHoldInvoice({ lnd }: LndContext, paymentHash: Hex): Promise<void> {
  assertHash(paymentHash);
  await lndCall('cancelHoldInvoice', () => cancelHodlInvoice({ lnd, id: paymentHash }));
}
