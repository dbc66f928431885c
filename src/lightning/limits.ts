import type { Msat } from '../domain/msat.js';
import { LightningError, LightningErrorCode } from './errors.js';

/**
 * The largest invoice LND creates: 100,000 BTC (`AddInvoice` refuses more whole satoshis than
 * that, lnrpc/invoicesrpc/addinvoice.go). One rule for every invoice and hold invoice the
 * gateway asks for, checked before LND is called.
 */
export const MAX_INVOICE_MSAT = 10_000_000_000_000_000n as Msat;

/** Throws LN_INVOICE_AMOUNT_TOO_LARGE (400) above MAX_INVOICE_MSAT. */
export function assertInvoiceAmount(amountMsat: Msat): void {
  if (amountMsat > MAX_INVOICE_MSAT)
    throw new LightningError(
      LightningErrorCode.INVOICE_AMOUNT_TOO_LARGE,
      `an invoice is for at most ${MAX_INVOICE_MSAT} msat (100,000 BTC)`,
      { maxMsat: MAX_INVOICE_MSAT.toString() },
    );
}
