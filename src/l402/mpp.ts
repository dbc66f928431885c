import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `Payment` HTTP authentication scheme (MPP, draft-httpauth-payment-00) with the Lightning
 * method's charge and session intents: the wire format shared by the proxy and the client SDK.
 * See docs/MPP.md.
 */

export type MppIntent = 'charge' | 'session';

/** A challenge's parameters as sent in `WWW-Authenticate: Payment …` (and echoed in credentials). */
export interface MppChallenge {
  id: string;
  realm: string;
  method: string;
  intent: string;
  /** base64url (no padding) of the JCS JSON of the request object: echoed byte for byte. */
  request: string;
  expires?: string;
  digest?: string;
  description?: string;
  opaque?: string;
}

/** The decoded `request` of a Lightning charge or session challenge. */
export interface MppLightningRequest {
  /** sats, decimal string: the charge's price, or the session's price per unit. */
  amount: string;
  currency: string;
  description?: string;
  unitType?: string;
  /** Charge. */
  methodDetails?: { invoice: string; paymentHash?: string; network?: string };
  /** Session. */
  depositInvoice?: string;
  paymentHash?: string;
  depositAmount?: string;
  idleTimeout?: string;
}

export type MppPayload =
  | { preimage: string }
  | { action: 'open'; preimage: string; returnInvoice?: string }
  | { action: 'bearer'; sessionId: string; preimage: string }
  | { action: 'topUp'; sessionId: string; topUpPreimage: string }
  /** `returnInvoice` (our extension): where the refund goes when open gave none or it expired. */
  | { action: 'close'; sessionId: string; preimage: string; returnInvoice?: string };

export interface MppCredential {
  challenge: MppChallenge;
  source?: string;
  payload: MppPayload;
}

export interface MppReceipt {
  status: 'success';
  method: 'lightning';
  timestamp: string;
  reference: string;
  challengeId: string;
  [extra: string]: unknown;
}

/** RFC 8785 (JCS) for what we serialise: plain objects, strings, integers, booleans, arrays. */
export function jcs(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${jcs(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** Strict base64url (padding tolerated, no other characters, zero trailing bits); undefined if not. */
export function fromB64url(text: string, maxBytes = 64 * 1024): Buffer | undefined {
  if (!B64URL.test(text) || text.length > Math.ceil((maxBytes * 4) / 3) + 2) return undefined;
  const bare = text.replace(/=+$/, '');
  if (bare.length % 4 === 1) return undefined;
  const buf = Buffer.from(bare, 'base64url');
  // Re-encoding gives back the text only when the unused trailing bits were zero.
  if (buf.toString('base64url') !== bare) return undefined;
  return buf;
}

/** The request object of a challenge, encoded as it goes on the wire. */
export const encodeRequest = (req: MppLightningRequest): string => b64url(jcs(req));

export function decodeRequest(text: string): MppLightningRequest | undefined {
  const raw = fromB64url(text);
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const r = v as Record<string, unknown>;
    if (typeof r['amount'] !== 'string' || typeof r['currency'] !== 'string') return undefined;
    return r as unknown as MppLightningRequest;
  } catch {
    return undefined;
  }
}

/**
 * The stateless challenge binding of the core draft (§5.1.2.1.1): HMAC-SHA256 over the seven
 * slots `realm|method|intent|request|expires|digest|opaque`, absent ones empty.
 */
export function challengeId(secret: Buffer, c: Omit<MppChallenge, 'id'>): string {
  const slots = [c.realm, c.method, c.intent, c.request, c.expires ?? '', c.digest ?? '', c.opaque ?? ''];
  return createHmac('sha256', secret).update(slots.join('|')).digest('base64url');
}

export function challengeIdMatches(secret: Buffer, c: MppChallenge): boolean {
  const expected = Buffer.from(challengeId(secret, c));
  const got = Buffer.from(c.id);
  return expected.length === got.length && timingSafeEqual(expected, got);
}

const quote = (v: string): string => `"${v.replace(/["\\]/g, (m) => `\\${m}`)}"`;

/** `Payment id="…", realm="…", method="…", intent="…", request="…", expires="…"` (Aperture's order). */
export function formatChallenge(c: MppChallenge): string {
  const parts: [string, string | undefined][] = [
    ['id', c.id],
    ['realm', c.realm],
    ['method', c.method],
    ['intent', c.intent],
    ['request', c.request],
    ['expires', c.expires],
    ['digest', c.digest],
    ['description', c.description],
    ['opaque', c.opaque],
  ];
  return `Payment ${parts
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(', ')}`;
}

/** A challenge out of the parameters of a parsed `Payment` challenge; undefined if incomplete. */
export function challengeFromParams(p: Record<string, string>): MppChallenge | undefined {
  const { id, realm, method, intent, request } = p;
  if (!id || !realm || !method || !intent || !request) return undefined;
  const c: MppChallenge = { id, realm, method, intent, request };
  for (const k of ['expires', 'digest', 'description', 'opaque'] as const)
    if (p[k] !== undefined) c[k] = p[k];
  return c;
}

export const formatCredential = (c: MppCredential): string => `Payment ${b64url(JSON.stringify(c))}`;

const HEX64 = /^[0-9a-f]{64}$/;
const isHex64 = (v: unknown): v is string => typeof v === 'string' && HEX64.test(v);

/**
 * Parses `Authorization: Payment <base64url JSON>` strictly; undefined when the header is not a
 * Payment credential at all, `'malformed'` when it is one we cannot read.
 */
export function parseCredential(header: string | undefined): MppCredential | 'malformed' | undefined {
  if (!header) return undefined;
  const m = /^Payment\s+(\S+)\s*$/i.exec(header.trim());
  if (!m) return /^Payment(\s|$)/i.test(header.trim()) ? 'malformed' : undefined;
  const raw = fromB64url(m[1]!);
  if (!raw) return 'malformed';
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    return 'malformed';
  }
  if (!v || typeof v !== 'object') return 'malformed';
  const o = v as { challenge?: unknown; payload?: unknown; source?: unknown };
  const ch = o.challenge as Record<string, unknown> | undefined;
  if (!ch || typeof ch !== 'object') return 'malformed';
  const params: Record<string, string> = {};
  for (const [k, val] of Object.entries(ch)) {
    if (typeof val !== 'string') return 'malformed';
    params[k] = val;
  }
  const challenge = challengeFromParams(params);
  const payload = o.payload as Record<string, unknown> | undefined;
  if (!challenge || !payload || typeof payload !== 'object') return 'malformed';
  const parsed = parsePayload(payload);
  if (!parsed) return 'malformed';
  return { challenge, payload: parsed, ...(typeof o.source === 'string' ? { source: o.source } : {}) };
}

function parsePayload(p: Record<string, unknown>): MppPayload | undefined {
  const action = p['action'];
  const pre = typeof p['preimage'] === 'string' ? p['preimage'].toLowerCase() : undefined;
  if (action === undefined) return isHex64(pre) ? { preimage: pre } : undefined;
  if (action === 'open') {
    if (!isHex64(pre)) return undefined;
    const ret = p['returnInvoice'];
    if (ret !== undefined && typeof ret !== 'string') return undefined;
    return { action, preimage: pre, ...(ret ? { returnInvoice: ret } : {}) };
  }
  const sessionId = typeof p['sessionId'] === 'string' ? p['sessionId'].toLowerCase() : undefined;
  if (!isHex64(sessionId)) return undefined;
  if (action === 'bearer') return isHex64(pre) ? { action, sessionId, preimage: pre } : undefined;
  if (action === 'close') {
    const ret = p['returnInvoice'];
    if (!isHex64(pre) || (ret !== undefined && typeof ret !== 'string')) return undefined;
    return { action, sessionId, preimage: pre, ...(ret ? { returnInvoice: ret } : {}) };
  }
  if (action === 'topUp') {
    const t = typeof p['topUpPreimage'] === 'string' ? p['topUpPreimage'].toLowerCase() : undefined;
    return isHex64(t) ? { action, sessionId, topUpPreimage: t } : undefined;
  }
  return undefined;
}

export const hashOf = (preimageHex: string): string =>
  createHash('sha256').update(Buffer.from(preimageHex, 'hex')).digest('hex');

export const formatReceipt = (r: MppReceipt): string => b64url(JSON.stringify(r));

export function parseReceipt(header: string | null | undefined): MppReceipt | undefined {
  if (!header) return undefined;
  const raw = fromB64url(header.trim());
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw.toString('utf8')) as MppReceipt;
    return v && v.status === 'success' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The network a BOLT11 invoice is for, from its prefix (`lnbcrt` regtest, `lntbs` signet, …). */
export function networkOf(invoice: string): string {
  const i = invoice.toLowerCase();
  if (i.startsWith('lnbcrt')) return 'regtest';
  if (i.startsWith('lntbs')) return 'signet';
  if (i.startsWith('lntb')) return 'testnet';
  return 'mainnet';
}

/** RFC 9457 problem types of the core and Lightning drafts. */
export const PROBLEM_BASE = 'https://paymentauth.org/problems/';
export type MppProblem =
  | 'payment-required'
  | 'payment-insufficient'
  | 'payment-expired'
  | 'verification-failed'
  | 'malformed-credential'
  | 'invalid-challenge'
  | 'lightning/invalid-preimage'
  | 'lightning/session-not-found'
  | 'lightning/session-closed'
  | 'lightning/insufficient-balance'
  | 'lightning/invalid-return-invoice';
