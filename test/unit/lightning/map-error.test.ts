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
    [
      [
        503,
        'UnexpectedAddHodlInvoiceError',
        { err: { details: 'invoice with payment hash already exists' } },
      ],
      'LN_INVOICE_EXISTS',
      409,
    ],
    [
      [
        503,
        'AddInvoiceError',
        { err: { details: 'invoice amount 100000.00001 BTC is too large, max is 100000 BTC' } },
      ],
      'LN_INVOICE_AMOUNT_TOO_LARGE',
      400,
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

  it.each([
    [503, 'UnexpectedAddHodlInvoiceError', 'invoice with payment hash already exists'],
    [503, 'AddInvoiceError', 'invoice amount 100000.00001 BTC is too large, max is 100000 BTC'],
    [503, 'SomethingNew', 'rpc error: code = Unknown desc = boltdb page 4711 freelist corrupt'],
  ])('never makes LND’s text the explanation (%s %s): it is the cause, for the log', (status, name, text) => {
    const err = toLightningError([status, name, { err: { details: text } }], 'createInvoice');
    expect(err.message).not.toContain(text);
    expect(JSON.stringify(err.toJSON())).not.toContain(text);
    expect(err.message).toMatch(/^createInvoice: \S/);
    expect((err.cause as Error).message).toContain(text);
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
