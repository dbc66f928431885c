import { describe, expect, it } from 'vitest';
import { decodeInvoice } from '../../../src/lightning/lnd/decode-invoice.js';

// BOLT 11 test vector: "Please send $3 for a cup of coffee to the same peer, within one minute".
const COFFEE =
  'lnbc2500u1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpu9qrsgquk0rl77nj30yxdy8j9vdx85fkpmdla2087ne0xh8nhedh8w27kyke0lp53ut353s06fv3qfegext0eh0ymjpf39tuven09sam30g4vgpfna3rh';

describe('decodeInvoice (offline)', () => {
  it('decodes the BOLT11 test vector exactly', () => {
    const d = decodeInvoice(COFFEE);
    expect(d.paymentHash).toBe('0001020304050607080900010203040506070809000102030405060708090102');
    expect(d.destination).toBe('03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad');
    expect(d.amountMsat).toBe(250_000_000n);
    expect(d.description).toBe('1 cup coffee');
    expect(d.network).toBe('mainnet');
    expect(d.isExpired).toBe(true);
  });

  it.each(['', 'lnbc1', 'not an invoice', COFFEE.slice(0, -1) + 'x'])(
    'rejects %j as LN_INVALID_REQUEST',
    (request) => {
      expect(() => decodeInvoice(request)).toThrow(
        expect.objectContaining({ code: 'LN_INVALID_REQUEST', status: 400 }),
      );
    },
  );
});
