/** WWW-Authenticate challenges exactly as Aperture sends them: LSAT first, then L402. */
export function challengeHeaders(macaroonBase64: string, invoice: string): string[] {
  return [
    `LSAT macaroon="${macaroonBase64}", invoice="${invoice}"`,
    `L402 macaroon="${macaroonBase64}", invoice="${invoice}"`,
  ];
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

/** Parses a challenge header (for the client side): both LSAT and L402 forms. */
export function parseChallenge(header: string): { macaroon: string; invoice: string } | undefined {
  const m = /(?:LSAT|L402)\s+macaroon="([^"]+)",\s*invoice="([^"]+)"/i.exec(header);
  return m ? { macaroon: m[1]!, invoice: m[2]! } : undefined;
}
