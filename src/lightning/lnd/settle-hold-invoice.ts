import { settleHodlInvoice } from 'ln-service';
import type { Hex } from '../types.js';
import type { LndContext } from './context.js';
import { assertHash } from './lookup-invoice.js';
import { lndCall } from './map-error.js';

/** Reveals the preimage: LND settles the held HTLCs and the payer's payment succeeds. */
export async function settleHoldInvoice({ lnd }: LndContext, preimage: Hex): Promise<void> {
  assertHash(preimage, 'preimage');
  await lndCall('settleHoldInvoice', () => settleHodlInvoice({ lnd, secret: preimage }));
}
