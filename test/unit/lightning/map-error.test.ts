import { describe, expect, it } from 'vitest';
import { LightningError } from '../../../src/lightning/errors.js';
import { toLightningError } from '../../../src/lightning/lnd/map-error.js';

describe('toLightningError', () => {
  it.each([
    [[409, 'InvoiceWithGivenHashAlreadyExists'], 'LN_INVOICE_EXISTS', 409],
    [[402, 'CannotSettleHtlcBeforeHtlcReceived'], 'LN_HOLD_INVOICE_NOT_ACCEPTED', 409],
    [[404, 'SecretDoesNotMatchAnyExistingHodlInvoice'], 'LN_INVOICE_NOT_FOUND', 404],
    [[404, 'SentPaymentNotFound'], 'LN_NOT_FOUND', 404],
    [
      [503, 'UnexpectedLookupInvoiceErr', { err: { details: 'unable to locate invoice' } }],
      'LN_INVOICE_NOT_FOUND',
      404,
    ],
    [
      [503, 'UnexpectedErrorCancelingHodlInvoice', { err: { details: 'invoice already settled' } }],
      'LN_HOLD_INVOICE_INVALID_STATE',
      409,
    ],
    [
      [503, 'FailedToConnectToDaemon', { err: { details: 'failed to connect to all addresses' } }],
      'LN_UNAVAILABLE',
      503,
    ],
    [
      [503, 'UnexpectedGetInvoicesError', { err: { details: 'verification failed: signature mismatch' } }],
      'LN_PERMISSION_DENIED',
      502,
    ],
    [[400, 'ExpectedIdToGetInvoiceDetails'], 'LN_INVALID_ARGUMENT', 400],
    [[503, 'SomethingNew'], 'LN_INTERNAL', 502],
  ])('maps %j to %s', (raw, code, status) => {
    const err = toLightningError(raw, 'op');
    expect(err).toBeInstanceOf(LightningError);
    expect(err.code).toBe(code);
    expect(err.status).toBe(status);
    expect(err.message).toContain('op:');
  });

  it('maps a plain gRPC connection error to unavailable', () => {
    expect(toLightningError(new Error('14 UNAVAILABLE: No connection established'), 'op').code).toBe(
      'LN_UNAVAILABLE',
    );
  });

  it('passes LightningErrors through unchanged', () => {
    const e = new LightningError('LN_NOT_FOUND', 'x');
    expect(toLightningError(e, 'op')).toBe(e);
  });
});
