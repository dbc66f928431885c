import { describe, expect, it } from 'vitest';
import { challengeHeaders, parseChallenge } from '../../../src/l402/header.js';
import { parseWwwAuthenticate } from '../../../src/l402/www-authenticate.js';

const MAC = 'AgEEbHNhdAJCAAA+/w==';
const INV = 'lnbcrt10u1pjexample';

describe('L402 challenge forms', () => {
  it('the client reads the newer `version="0", token=` form', () => {
    expect(parseChallenge(`L402 version="0", token="${MAC}", invoice="${INV}"`)).toEqual({
      macaroon: MAC,
      invoice: INV,
    });
  });

  it('the client reads the `macaroon=` form, in either order and case', () => {
    expect(parseChallenge(`L402 macaroon="${MAC}", invoice="${INV}"`)).toEqual({
      macaroon: MAC,
      invoice: INV,
    });
    expect(parseChallenge(`lsat invoice="${INV}",macaroon="${MAC}"`)).toEqual({
      macaroon: MAC,
      invoice: INV,
    });
  });

  it('skips a version it does not know, and other schemes joined into the same value', () => {
    expect(parseChallenge(`L402 version="1", token="${MAC}", invoice="${INV}"`)).toBeUndefined();
    const joined = `Payment id="abc", realm="x", method="lightning", intent="charge", request="eyJ9", L402 version="0", token="${MAC}", invoice="${INV}"`;
    expect(parseChallenge(joined)).toEqual({ macaroon: MAC, invoice: INV });
  });

  it('splits challenges joined by fetch and keeps the first of a repeated parameter', () => {
    const value = [...challengeHeaders(MAC, INV, { tokenForm: true }), 'Payment id="i", id="j"'].join(', ');
    const parsed = parseWwwAuthenticate(value);
    expect(parsed.map((c) => c.scheme)).toEqual(['LSAT', 'L402', 'L402', 'Payment']);
    expect(parsed[2]!.params).toEqual({ version: '0', token: MAC, invoice: INV });
    expect(parsed[3]!.params).toEqual({ id: 'i' });
  });

  it('reads a token68 credential and unquoted parameters', () => {
    expect(parseWwwAuthenticate('Bearer abc.def==, Basic realm=x')).toEqual([
      { scheme: 'Bearer', params: {}, token68: 'abc.def==' },
      { scheme: 'Basic', params: { realm: 'x' } },
    ]);
  });

  it('emits the new form only when asked, after the two Aperture lines', () => {
    expect(challengeHeaders(MAC, INV)).toHaveLength(2);
    expect(challengeHeaders(MAC, INV, { tokenForm: true })).toEqual([
      `LSAT macaroon="${MAC}", invoice="${INV}"`,
      `L402 macaroon="${MAC}", invoice="${INV}"`,
      `L402 version="0", token="${MAC}", invoice="${INV}"`,
    ]);
  });
});
