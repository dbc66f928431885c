import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  b64url,
  challengeId,
  challengeIdMatches,
  decodeRequest,
  encodeRequest,
  formatChallenge,
  formatCredential,
  fromB64url,
  jcs,
  parseCredential,
  parseReceipt,
  formatReceipt,
} from '../../../src/l402/mpp.js';
import { parseWwwAuthenticate } from '../../../src/l402/www-authenticate.js';
import { challengeFromParams } from '../../../src/l402/mpp.js';

const secret = randomBytes(32);
const unsigned = {
  realm: 'api.example.com',
  method: 'lightning',
  intent: 'charge',
  request: encodeRequest({ amount: '10', currency: 'sat', description: 'Q&A <x>' }),
  expires: '2026-08-13T12:15:00Z',
};

describe('MPP wire format', () => {
  it('JCS sorts keys, drops undefined, escapes like JSON.stringify (no & < > escaping)', () => {
    expect(jcs({ b: 1, a: { d: 'Q&A <x>', c: [2, 'x'] }, z: undefined })).toBe(
      '{"a":{"c":[2,"x"],"d":"Q&A <x>"},"b":1}',
    );
  });

  it('request is base64url without padding and decodes with or without it', () => {
    expect(unsigned.request).not.toMatch(/[=+/]/);
    expect(decodeRequest(unsigned.request)).toEqual({
      amount: '10',
      currency: 'sat',
      description: 'Q&A <x>',
    });
    expect(decodeRequest(unsigned.request + '=')?.amount).toBe('10');
  });

  it('strict base64url: no stray characters, no non-zero trailing bits', () => {
    expect(fromB64url('YQ')).toEqual(Buffer.from('a'));
    expect(fromB64url('YR')).toBeUndefined(); // trailing bits set
    expect(fromB64url('Y Q')).toBeUndefined();
    expect(fromB64url('YQ+/')).toBeUndefined();
  });

  it('the challenge id is the 7-slot HMAC binding: any changed slot breaks it', () => {
    const id = challengeId(secret, unsigned);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(challengeIdMatches(secret, { id, ...unsigned })).toBe(true);
    expect(challengeIdMatches(secret, { id, ...unsigned, expires: '2030-01-01T00:00:00Z' })).toBe(false);
    expect(challengeIdMatches(secret, { id, ...unsigned, opaque: b64url('{}') })).toBe(false);
    expect(challengeIdMatches(randomBytes(32), { id, ...unsigned })).toBe(false);
  });

  it('the challenge header reads back through the generic parser, params in Aperture order', () => {
    const c = { id: challengeId(secret, unsigned), ...unsigned };
    const header = formatChallenge(c);
    expect(header).toMatch(
      /^Payment id="[^"]+", realm="api.example.com", method="lightning", intent="charge"/,
    );
    const [parsed] = parseWwwAuthenticate(header);
    expect(challengeFromParams(parsed!.params)).toEqual(c);
  });

  it('parses charge and session credentials, refuses malformed ones', () => {
    const c = { id: challengeId(secret, unsigned), ...unsigned };
    const pre = 'ab'.repeat(32);
    expect(parseCredential(formatCredential({ challenge: c, payload: { preimage: pre } }))).toEqual({
      challenge: c,
      payload: { preimage: pre },
    });
    const bearer = { action: 'bearer' as const, sessionId: 'cd'.repeat(32), preimage: pre };
    expect(parseCredential(formatCredential({ challenge: c, payload: bearer }))).toMatchObject({
      payload: bearer,
    });
    expect(parseCredential('L402 abc:def')).toBeUndefined();
    expect(parseCredential('Payment !!!')).toBe('malformed');
    expect(
      parseCredential(`Payment ${b64url(JSON.stringify({ challenge: c, payload: { preimage: 'xx' } }))}`),
    ).toBe('malformed');
    expect(
      parseCredential(
        `Payment ${b64url(JSON.stringify({ challenge: c, payload: { action: 'nope', preimage: pre } }))}`,
      ),
    ).toBe('malformed');
  });

  it('receipts round-trip', () => {
    const r = {
      status: 'success' as const,
      method: 'lightning' as const,
      timestamp: '2026-08-13T12:00:00.000Z',
      reference: 'ef'.repeat(32),
      challengeId: 'x',
    };
    expect(parseReceipt(formatReceipt(r))).toEqual(r);
    expect(parseReceipt('garbage!')).toBeUndefined();
  });
});
