import { parseWwwAuthenticate } from './www-authenticate.js';

/**
 * WWW-Authenticate challenges exactly as Aperture sends them: LSAT first, then L402. With
 * `tokenForm`, a third one in the L402 specification's newer form, `L402 version="0",
 * token="…", invoice="…"`, follows them (clients that read the first challenge keep working).
 */
export function challengeHeaders(
  macaroonBase64: string,
  invoice: string,
  options: { tokenForm?: boolean } = {},
): string[] {
  const headers = [
    `LSAT macaroon="${macaroonBase64}", invoice="${invoice}"`,
    `L402 macaroon="${macaroonBase64}", invoice="${invoice}"`,
  ];
  if (options.tokenForm) headers.push(`L402 version="0", token="${macaroonBase64}", invoice="${invoice}"`);
  return headers;
}

export interface PresentedCredential {
  macaroon: Buffer;
  preimage: Buffer;
}

const AUTH = /^(?:L402|LSAT)\s+([A-Za-z0-9+/_-]+={0,2}):([0-9a-fA-F]{64})\s*$/;

/**
 * Parses `Authorization: L402|LSAT <macaroon>:<preimage>`; standard or URL-safe base64, padded or
 * not, hex in any case. Returns undefined for anything else.
 */
export function parseAuthorization(header: string | undefined): PresentedCredential | undefined {
  if (!header) return undefined;
  const m = AUTH.exec(header.trim());
  if (!m) return undefined;
  const b64 = m[1]!.replace(/-/g, '+').replace(/_/g, '/');
  const macaroon = Buffer.from(b64, 'base64');
  if (macaroon.length === 0) return undefined;
  return { macaroon, preimage: Buffer.from(m[2]!, 'hex') };
}

/**
 * The first L402 (or LSAT) challenge of a `WWW-Authenticate` value (for the client side), in
 * either form: `macaroon="…", invoice="…"` or `version="0", token="…", invoice="…"`. Other
 * schemes in the same value (a `Payment` challenge) are skipped; a version other than 0 is not
 * understood.
 */
export function parseChallenge(header: string): { macaroon: string; invoice: string } | undefined {
  for (const c of parseWwwAuthenticate(header)) {
    const scheme = c.scheme.toUpperCase();
    if (scheme !== 'L402' && scheme !== 'LSAT') continue;
    const { version, macaroon, token, invoice } = c.params;
    if (version !== undefined && version !== '0') continue;
    const mac = macaroon ?? token;
    if (mac && invoice) return { macaroon: mac, invoice };
  }
  return undefined;
}
