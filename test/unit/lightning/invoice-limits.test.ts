import type { AuthenticatedLnd } from 'lightning';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import {
  assertInvoiceAmount,
  assertInvoiceDescription,
  MAX_INVOICE_MSAT,
} from '../../../src/lightning/limits.js';
import { createHoldInvoice } from '../../../src/lightning/lnd/create-hold-invoice.js';
import { createInvoice } from '../../../src/lightning/lnd/create-invoice.js';

/** An LND handle that records every use: the checks below must not reach it. */
function untouchableLnd(): { lnd: AuthenticatedLnd; touched: string[] } {
  const touched: string[] = [];
  const lnd = new Proxy(
    {},
    {
      get: (_t, p) => {
        touched.push(String(p));
        return undefined;
      },
    },
  ) as AuthenticatedLnd;
  return { lnd, touched };
}

describe('the invoice amount limit (LND’s 100,000 BTC)', () => {
  it('allows up to MAX_INVOICE_MSAT and refuses one msat more with a 400 and a stable code', () => {
    expect(MAX_INVOICE_MSAT).toBe(100_000n * 100_000_000n * 1000n);
    expect(() => assertInvoiceAmount(MAX_INVOICE_MSAT)).not.toThrow();
    expect(() => assertInvoiceAmount(msat(MAX_INVOICE_MSAT + 1n))).toThrow(
      expect.objectContaining({ code: 'LN_INVOICE_AMOUNT_TOO_LARGE', status: 400 }) as Error,
    );
  });

  it('is checked by the LND adapter before LND is called, for invoices and hold invoices', async () => {
    const { lnd, touched } = untouchableLnd();
    const amountMsat = msat(MAX_INVOICE_MSAT + 1000n);
    await expect(createInvoice({ lnd }, { amountMsat })).rejects.toMatchObject({
      code: 'LN_INVOICE_AMOUNT_TOO_LARGE',
      status: 400,
    });
    await expect(
      createHoldInvoice({ lnd }, { amountMsat, paymentHash: 'ab'.repeat(32) }),
    ).rejects.toMatchObject({ code: 'LN_INVOICE_AMOUNT_TOO_LARGE', status: 400 });
    expect(touched).toEqual([]);
  });

  it('limits descriptions to 639 bytes of UTF-8 (what a BOLT11 field holds), before LND is called', async () => {
    expect(() => assertInvoiceDescription('€'.repeat(213))).not.toThrow(); // 639 bytes
    const long = '€'.repeat(214); // 214 characters, 642 bytes
    expect(() => assertInvoiceDescription(long)).toThrow(
      expect.objectContaining({ code: 'LN_INVALID_ARGUMENT', status: 400 }) as Error,
    );
    const { lnd, touched } = untouchableLnd();
    await expect(createInvoice({ lnd }, { amountMsat: msat(1000), description: long })).rejects.toMatchObject(
      {
        status: 400,
      },
    );
    await expect(
      createHoldInvoice({ lnd }, { amountMsat: msat(1000), description: long, paymentHash: 'ab'.repeat(32) }),
    ).rejects.toMatchObject({ status: 400 });
    expect(touched).toEqual([]);
  });
});
