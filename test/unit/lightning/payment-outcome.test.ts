import { describe, expect, it } from 'vitest';
import { classifyPayError, failureReason, succeeded } from '../../../src/lightning/lnd/payment-outcome.js';

const hash = 'aa'.repeat(32);

describe('payment outcomes', () => {
  it.each([
    [{ is_route_not_found: true }, 'NO_ROUTE'],
    [{ is_insufficient_balance: true }, 'INSUFFICIENT_BALANCE'],
    [{ is_invalid_payment: true }, 'INCORRECT_PAYMENT_DETAILS'],
    [{ is_pathfinding_timeout: true }, 'PATHFINDING_TIMEOUT'],
    [{ is_canceled: true }, 'CANCELED'],
    [{}, 'FAILED'],
  ])('maps failure flags %j to %s', (raw, reason) => {
    expect(failureReason(raw)).toBe(reason);
  });

  it('splits the total into amount and fee exactly', () => {
    const out = succeeded(hash, { secret: 'bb'.repeat(32), mtokens: '1000001', fee_mtokens: '1' });
    expect(out).toEqual({
      status: 'succeeded',
      paymentHash: hash,
      preimage: 'bb'.repeat(32),
      amountMsat: 1_000_000n,
      feeMsat: 1n,
    });
  });

  it('treats errors that prove no attempt was made as failures', () => {
    expect(
      classifyPayError(hash, [
        503,
        'UnexpectedPaymentError',
        { err: { details: 'invoice expired. Valid until 2020' } },
      ]),
    ).toMatchObject({
      status: 'failed',
      reason: 'INVOICE_EXPIRED',
    });
  });

  it.each([
    [[503, 'UnexpectedPaymentError', { err: { details: 'invoice is already paid' } }]],
    [[503, 'UnexpectedPaymentError', { err: { details: 'payment is in transition' } }]],
    [[503, 'UnexpectedPaymentError', { err: { details: '14 UNAVAILABLE: Connection dropped' } }]],
    [new Error('socket hang up')],
  ])('keeps an ambiguous error %j pending', (err) => {
    expect(classifyPayError(hash, err)).toEqual({ status: 'pending', paymentHash: hash });
  });
});
