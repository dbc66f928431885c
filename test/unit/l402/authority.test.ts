import { createHash, createHmac, randomBytes } from 'node:crypto';
import { importMacaroon, newMacaroon } from 'macaroon';
import { describe, expect, it, vi } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { challengeHeaders, parseAuthorization, parseChallenge } from '../../../src/l402/header.js';
import { decodeIdentifier, encodeIdentifier } from '../../../src/l402/identifier.js';
import { decodeV2, encodeV2, mint, signatureOf } from '../../../src/l402/macaroon.js';

const secret = randomBytes(32);
const preimage = randomBytes(32);
const hash = createHash('sha256').update(preimage).digest();

function setup(now = 1_800_000_000_000) {
  let t = now;
  const authority = new L402Authority(secret, () => t);
  const minted = authority.mint({
    paymentHash: hash,
    service: 'llm',
    capabilities: ['chat', 'embed'],
    lifetimeSeconds: 3600,
  });
  const header = `L402 ${minted.macaroon}:${preimage.toString('hex')}`;
  return { authority, minted, header, advance: (ms: number) => (t += ms) };
}

describe('macaroon V2 wire compatibility with js-macaroon', () => {
  it('js-macaroon reads and verifies what we mint', () => {
    const rootKey = randomBytes(32);
    const id = encodeIdentifier(hash, randomBytes(32));
    const ours = encodeV2(mint(rootKey, id, 'lsat', ['services=llm:0', 'llm_valid_until=1900000000']));
    const theirs = importMacaroon(ours);
    expect(Buffer.from(theirs.identifier)).toEqual(id);
    expect(theirs.location).toBe('lsat');
    const seen: string[] = [];
    theirs.verify(rootKey, (c) => {
      seen.push(c);
      return null;
    });
    expect(seen).toEqual(['services=llm:0', 'llm_valid_until=1900000000']);
    expect(() => theirs.verify(randomBytes(32), () => null)).toThrow();
  });

  it('we read and verify what js-macaroon mints, byte for byte', () => {
    const rootKey = randomBytes(32);
    const id = encodeIdentifier(hash, randomBytes(32));
    const m = newMacaroon({ version: 2, rootKey, identifier: id, location: 'lsat' });
    m.addFirstPartyCaveat('services=llm:0');
    m.addFirstPartyCaveat('llm_capabilities=chat');
    const bytes = Buffer.from(m.exportBinary());
    const decoded = decodeV2(bytes);
    expect(decoded.caveats).toEqual(['services=llm:0', 'llm_capabilities=chat']);
    expect(decoded.signature).toEqual(signatureOf(rootKey, id, decoded.caveats));
    expect(encodeV2(decoded)).toEqual(bytes);
  });
});

describe('L402 identifier and headers', () => {
  it('packs version 0, the payment hash and the token id into 66 bytes', () => {
    const tokenId = randomBytes(32);
    const id = encodeIdentifier(hash, tokenId);
    expect(id.length).toBe(66);
    expect(id.subarray(0, 2)).toEqual(Buffer.from([0, 0]));
    expect(decodeIdentifier(id)).toEqual({ version: 0, paymentHash: hash, tokenId });
    expect(decodeIdentifier(Buffer.concat([Buffer.from([0, 1]), id.subarray(2)]))).toBeUndefined();
  });

  it('sends challenges exactly as Aperture does, LSAT first', () => {
    expect(challengeHeaders('AgEE', 'lnbcrt1x')).toEqual([
      'LSAT macaroon="AgEE", invoice="lnbcrt1x"',
      'L402 macaroon="AgEE", invoice="lnbcrt1x"',
    ]);
    // The regex lnget uses must match.
    expect(
      /(LSAT|L402)\s+macaroon="(.*?)",\s*invoice="(.*?)"/.test(challengeHeaders('AgEE', 'lnbcrt1x')[1]!),
    ).toBe(true);
    expect(parseChallenge(challengeHeaders('AgEE', 'lnbcrt1x')[0]!)).toEqual({
      macaroon: 'AgEE',
      invoice: 'lnbcrt1x',
    });
  });

  it('accepts L402 and LSAT, standard and URL-safe base64, any hex case', () => {
    const mac = Buffer.from([0xfb, 0xff, 0xfe, 0x01]);
    const pre = 'AB'.repeat(32);
    for (const h of [
      `L402 ${mac.toString('base64')}:${pre}`,
      `LSAT ${mac.toString('base64url')}:${pre.toLowerCase()}`,
    ]) {
      expect(parseAuthorization(h)).toEqual({ macaroon: mac, preimage: Buffer.from(pre, 'hex') });
    }
    for (const h of [
      'Bearer x',
      `L402 ${mac.toString('base64')}`,
      `L402 ${mac.toString('base64')}:abc`,
      'L402 :' + pre,
    ])
      expect(parseAuthorization(h)).toBeUndefined();
  });
});

describe('L402Authority.verify', () => {
  it('accepts a valid credential for its service and capability', () => {
    const { authority, minted, header } = setup();
    const v = authority.verify(header, 'llm', 'chat');
    expect(v).toMatchObject({ ok: true, tokenId: minted.tokenId, paymentHash: hash.toString('hex') });
  });

  it('computes the expiry per token, at minting', () => {
    const a = setup(1_800_000_000_000).minted.expiresAt;
    const b = setup(1_800_000_100_000).minted.expiresAt;
    expect(b - a).toBe(100);
  });

  it.each([
    [
      'another service',
      (s: ReturnType<typeof setup>) => s.authority.verify(s.header, 'images'),
      'WRONG_SERVICE',
    ],
    [
      'a missing capability',
      (s: ReturnType<typeof setup>) => s.authority.verify(s.header, 'llm', 'admin'),
      'MISSING_CAPABILITY',
    ],
    [
      'a wrong preimage',
      (s: ReturnType<typeof setup>) =>
        s.authority.verify(`L402 ${s.minted.macaroon}:${'00'.repeat(32)}`, 'llm'),
      'WRONG_PREIMAGE',
    ],
    [
      'an expired credential',
      (s: ReturnType<typeof setup>) => (s.advance(3600_000), s.authority.verify(s.header, 'llm')),
      'EXPIRED',
    ],
    [
      'a revoked credential',
      (s: ReturnType<typeof setup>) => (
        s.authority.revoked.set(s.minted.tokenId, Infinity),
        s.authority.verify(s.header, 'llm')
      ),
      'REVOKED',
    ],
    [
      'garbage',
      (s: ReturnType<typeof setup>) => s.authority.verify(`L402 AAAA:${'00'.repeat(32)}`, 'llm'),
      'MALFORMED',
    ],
    ['no credential', (s: ReturnType<typeof setup>) => s.authority.verify(undefined, 'llm'), 'MISSING'],
  ])('refuses %s', (_name, run, failure) => {
    expect(run(setup())).toMatchObject({ ok: false, failure });
  });

  it('refuses a tampered caveat and a macaroon from another secret', () => {
    const { authority, minted } = setup();
    const m = decodeV2(Buffer.from(minted.macaroon, 'base64'));
    m.caveats[m.caveats.length - 1] = 'llm_valid_until=9999999999';
    const tampered = `L402 ${encodeV2(m).toString('base64')}:${preimage.toString('hex')}`;
    expect(authority.verify(tampered, 'llm')).toMatchObject({ ok: false, failure: 'BAD_SIGNATURE' });
    const other = new L402Authority(randomBytes(32), () => 1_800_000_000_000);
    expect(other.verify(`L402 ${minted.macaroon}:${preimage.toString('hex')}`, 'llm')).toMatchObject({
      ok: false,
      failure: 'BAD_SIGNATURE',
    });
  });

  it('honours caveats a holder adds to restrict their own credential', () => {
    const { authority, minted } = setup();
    const m = decodeV2(Buffer.from(minted.macaroon, 'base64'));
    const extra = 'llm_valid_until=1800000001';
    m.caveats.push(extra);
    m.signature = createHmac('sha256', m.signature).update(extra).digest();
    const header = `L402 ${encodeV2(m).toString('base64')}:${preimage.toString('hex')}`;
    expect(authority.verify(header, 'llm')).toMatchObject({ ok: true, expiresAt: 1_800_000_001_000 });
  });

  it('checks expiry, revocation, service and capability again on a credential it verified before', () => {
    const s = setup();
    const full = vi.spyOn(s.authority as unknown as { verifyFully: () => unknown }, 'verifyFully');
    expect(s.authority.verify(s.header, 'llm', 'chat')).toMatchObject({ ok: true });
    expect(s.authority.verify(s.header, 'llm', 'chat')).toMatchObject({ ok: true });
    expect(full).toHaveBeenCalledTimes(1); // the second one came from the cache
    expect(s.authority.verify(s.header, 'images')).toMatchObject({ ok: false, failure: 'WRONG_SERVICE' });
    expect(s.authority.verify(s.header, 'llm', 'admin')).toMatchObject({
      ok: false,
      failure: 'MISSING_CAPABILITY',
    });
    const calls = full.mock.calls.length;
    s.advance(3600_000);
    expect(s.authority.verify(s.header, 'llm', 'chat')).toMatchObject({ ok: false, failure: 'EXPIRED' });
    expect(full.mock.calls.length).toBe(calls); // refused by the cached entry's expiry
    const r = setup();
    expect(r.authority.verify(r.header, 'llm')).toMatchObject({ ok: true });
    r.authority.revoked.set(r.minted.tokenId, Infinity);
    expect(r.authority.verify(r.header, 'llm')).toMatchObject({ ok: false, failure: 'REVOKED' });
  });

  it('answers a repeat from the entry of its exact header only for the service and capability it was verified for', () => {
    const s = setup();
    const full = vi.spyOn(s.authority as unknown as { verifyFully: () => unknown }, 'verifyFully');
    expect(s.authority.verify(s.header, 'llm', 'chat')).toMatchObject({ ok: true });
    // Another capability of the same credential: verified in full, then remembered instead.
    expect(s.authority.verify(s.header, 'llm', 'embed')).toMatchObject({ ok: true });
    expect(s.authority.verify(s.header, 'llm', 'embed')).toMatchObject({ ok: true });
    expect(full).toHaveBeenCalledTimes(2);
    // A capability or service it lacks is never answered from an entry made for another one.
    expect(s.authority.verify(s.header, 'llm', 'admin')).toMatchObject({ failure: 'MISSING_CAPABILITY' });
    expect(s.authority.verify(s.header, 'images', 'embed')).toMatchObject({ failure: 'WRONG_SERVICE' });
    expect(s.authority.verify(s.header, 'llm', 'chat')).toMatchObject({
      ok: true,
      tokenId: s.minted.tokenId,
    });
    // The same answer object each time: frozen, so no caller can change what the next one gets.
    const answer = s.authority.verify(s.header, 'llm', 'chat');
    expect(s.authority.verify(s.header, 'llm', 'chat')).toBe(answer);
    expect(Object.isFrozen(answer)).toBe(true);
    s.authority.revoked.set(s.minted.tokenId, Infinity);
    expect(s.authority.verify(s.header, 'llm', 'chat')).toMatchObject({ ok: false, failure: 'REVOKED' });
  });

  it('verifies and remembers long credentials too, and still refuses them once revoked', () => {
    const { authority, minted } = setup();
    const m = decodeV2(Buffer.from(minted.macaroon, 'base64'));
    // Harmless caveats a holder may add, enough to pass a kilobyte.
    for (let i = 0; i < 20; i++) {
      const c = `note${i}=${'x'.repeat(40)}`;
      m.caveats.push(c);
      m.signature = createHmac('sha256', m.signature).update(c).digest();
    }
    const header = `L402 ${encodeV2(m).toString('base64')}:${preimage.toString('hex')}`;
    expect(header.length).toBeGreaterThan(1024);
    expect(authority.verify(header, 'llm')).toMatchObject({ ok: true, tokenId: minted.tokenId });
    expect(authority.verify(header, 'llm')).toMatchObject({ ok: true, tokenId: minted.tokenId });
    const bad = header.slice(0, -1) + (header.endsWith('0') ? '1' : '0');
    expect(authority.verify(bad, 'llm')).toMatchObject({ ok: false, failure: 'WRONG_PREIMAGE' });
    authority.revoked.set(minted.tokenId, Infinity);
    expect(authority.verify(header, 'llm')).toMatchObject({ ok: false, failure: 'REVOKED' });
  });
});
