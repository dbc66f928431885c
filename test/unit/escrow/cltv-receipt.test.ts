import { describe, expect, it } from 'vitest';
import { maxHoldMs, mustCancel } from '../../../src/escrow/cltv.js';
import { receiptDigest, signReceipt, verifyReceipt, xOnlyPublicKey } from '../../../src/escrow/receipt.js';

describe('CLTV budgeting', () => {
  it('cancels a safety margin before LND’s own hold expiry (18 blocks)', () => {
    expect(mustCancel(1000, 969, 12)).toBe(false); // 31 blocks left
    expect(mustCancel(1000, 970, 12)).toBe(true); // 30 left = 18 + 12
    expect(mustCancel(1000, 981, 0)).toBe(false); // 19 left: LND itself would still hold
    expect(mustCancel(1000, 982, 0)).toBe(true); // 18 left: LND's own cancel point
  });
  it('fits wall-clock deadlines inside the hold budget', () => {
    expect(maxHoldMs(144, 12, 600_000)).toBe((144 - 30) * 600_000);
    expect(maxHoldMs(20, 12, 600_000)).toBe(0);
  });
});

describe('delivery receipts (BIP340 over a tagged hash)', () => {
  const sk = '0'.repeat(63) + '3';
  const hash = 'ab'.repeat(32);
  it('verifies its own signatures and rejects any change', () => {
    const pk = xOnlyPublicKey(sk);
    const sig = signReceipt(sk, 'e1', hash, 'ok');
    expect(verifyReceipt(pk, 'e1', hash, 'ok', sig)).toBe(true);
    expect(verifyReceipt(pk, 'e2', hash, 'ok', sig)).toBe(false);
    expect(verifyReceipt(pk, 'e1', 'cd'.repeat(32), 'ok', sig)).toBe(false);
    expect(verifyReceipt(pk, 'e1', hash, 'ok!', sig)).toBe(false);
    const flipped = (sig.slice(0, 10) + (sig[10] === '0' ? '1' : '0') + sig.slice(11)).toLowerCase();
    expect(verifyReceipt(pk, 'e1', hash, 'ok', flipped)).toBe(false);
    expect(verifyReceipt('zz', 'e1', hash, 'ok', sig)).toBe(false);
  });
  it('binds the escrow id unambiguously (no id/hash concatenation collisions)', () => {
    expect(receiptDigest('e1', hash, 'x').equals(receiptDigest('e1', hash, 'x'))).toBe(true);
    expect(receiptDigest('e1', hash, 'x').equals(receiptDigest('e', hash, 'x'))).toBe(false);
  });
});
