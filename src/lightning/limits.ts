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

/**
 * The longest invoice description, in bytes of UTF-8: a BOLT11 field holds at most 1023 5-bit
 * words (639 bytes); LND refuses longer memos with its own errors. Schemas count characters, so a
 * description within their limit can still be too long here.
 */
export const MAX_INVOICE_DESCRIPTION_BYTES = 639;

/** Throws LN_INVALID_ARGUMENT (400) for a description longer than MAX_INVOICE_DESCRIPTION_BYTES. */
export function assertInvoiceDescription(description: string | undefined): void {
  if (
    description !== undefined &&
    new TextEncoder().encode(description).length > MAX_INVOICE_DESCRIPTION_BYTES
  )
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      `an invoice description is at most ${MAX_INVOICE_DESCRIPTION_BYTES} bytes of UTF-8`,
      { maxBytes: MAX_INVOICE_DESCRIPTION_BYTES },
    );
}
