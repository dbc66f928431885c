import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { RecordStore } from '../ledger/store.js';
import { RateLimiter } from '../proxy/rate-limit.js';
import { PREFIXES } from '../records/prefixes.js';
import { recordCodec } from '../records/codec.js';

export const SESSION_COOKIE = 'coulomb_session';
export const CSRF_HEADER = 'x-csrf-token';

const sha256 = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

interface Session {
  csrf: string;
  expiresAt: number;
}

/** A session as a shared store holds it (by the SHA-256 of its token). */
const sessionCodec = recordCodec(
  'console session',
  Type.Object({ csrf: Type.String(), expiresAt: Type.Integer() }, { additionalProperties: false }),
);
const PREFIX = PREFIXES.consoleSession.prefix;

export interface SessionOptions {
  /** How long a session lasts (default 8 hours). */
  ttlMs?: number;
  /** Sessions held at most; the oldest goes first (default 32). */
  max?: number;
  /** Login attempts allowed per source address and minute (default 10). */
  loginsPerMinute?: number;
  now?: () => number;
  /**
   * A store several instances share: sessions are kept there too, so a console whose requests a
   * load balancer spreads over the instances stays logged in, and a logout anywhere ends the
   * session everywhere within `maxAgeMs` (default 1 s: how long a session read is trusted).
   */
  store?: RecordStore;
  maxAgeMs?: number;
}

/**
 * Operator sessions of the web console: the operator key is exchanged once for a random
 * session token sent only in an HttpOnly, SameSite=Strict cookie (Secure over TLS). Sessions are
 * held server-side, by the SHA-256 of their token (never the token itself), expire, and are
 * bounded (the oldest is dropped). Each has its own CSRF token, which a state-changing request
 * must carry in `x-csrf-token`; SameSite=Strict and an Origin check come on top.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, Session & { readAt: number }>();
  private readonly ttlMs: number;
  private readonly max: number;
  private readonly now: () => number;
  private readonly store: RecordStore | undefined;
  private readonly maxAgeMs: number;
  /** Login attempts per source address (token buckets, bounded): guessing the key is slowed down. */
  private readonly logins: RateLimiter;

  constructor(options: SessionOptions = {}) {
    this.ttlMs = options.ttlMs ?? 8 * 3600_000;
    this.max = options.max ?? 32;
    this.now = options.now ?? Date.now;
    this.logins = new RateLimiter(options.loginsPerMinute ?? 10, 60, this.now);
    this.store = options.store;
    this.maxAgeMs = options.maxAgeMs ?? 1000;
  }

  /** 0 if a login attempt from `address` may go ahead (and counts it), else ms until one may. */
  loginAttempt(address: string): number {
    return this.logins.take(address);
  }

  /** A new session: its token (for the cookie only), CSRF token, expiry and lifetime. */
  async create(): Promise<{ token: string; csrf: string; expiresAt: number; maxAgeSeconds: number }> {
    this.sweep();
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    const token = randomBytes(32).toString('base64url');
    const session = { csrf: randomBytes(24).toString('base64url'), expiresAt: this.now() + this.ttlMs };
    const key = sha256(token);
    if (this.store) {
      await this.pruneStored();
      await this.store.putRecords([{ key: PREFIX + key, value: sessionCodec.encode(session) }]);
    }
    this.sessions.set(key, { ...session, readAt: this.now() });
    return { token, ...session, maxAgeSeconds: this.ttlMs / 1000 };
  }

  /** The live session of a token, if any. */
  async find(token: string | undefined): Promise<Session | undefined> {
    if (!token) return undefined;
    const key = sha256(token);
    const now = this.now();
    let s = this.sessions.get(key);
    if (this.store && (!s || s.readAt <= now - this.maxAgeMs)) {
      // Another instance may have created it, or ended it.
      const raw = await this.store.getRecord(PREFIX + key);
      this.sessions.delete(key);
      s = raw === undefined ? undefined : { ...sessionCodec.decode(raw), readAt: now };
      if (s) {
        while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
        this.sessions.set(key, s);
      }
    }
    if (!s) return undefined;
    if (s.expiresAt <= now) {
      await this.end(token);
      return undefined;
    }
    return { csrf: s.csrf, expiresAt: s.expiresAt };
  }

  async end(token: string | undefined): Promise<void> {
    if (!token) return;
    const key = sha256(token);
    this.sessions.delete(key);
    if (this.store) await this.store.putRecords([{ key: PREFIX + key, value: null }]);
  }

  /** The stored sessions: expired ones go, and the oldest beyond `max` (bounded by `max`). */
  private async pruneStored(): Promise<void> {
    const stored = (await this.store!.listRecords(PREFIX)).map((r) => ({
      key: r.key,
      expiresAt: sessionCodec.decode(r.value).expiresAt,
    }));
    const now = this.now();
    const live = stored.filter((r) => r.expiresAt > now).sort((a, b) => a.expiresAt - b.expiresAt);
    const gone = [
      ...stored.filter((r) => r.expiresAt <= now),
      ...live.slice(0, Math.max(0, live.length - (this.max - 1))),
    ];
    if (gone.length > 0) await this.store!.putRecords(gone.map((r) => ({ key: r.key, value: null })));
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(k);
  }
}

/** The session cookie's value in a request, if any. */
export function sessionToken(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a request authenticated by the session cookie may proceed: reads always; a
 * state-changing request only with the session's CSRF token, and from this origin when the
 * browser says where it comes from.
 */
export function csrfProblem(req: FastifyRequest, session: Session): string | undefined {
  if (SAFE_METHODS.has(req.method)) return undefined;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `${req.protocol}://${req.headers.host ?? ''}`)
    return 'cross-origin request refused';
  const presented = req.headers[CSRF_HEADER];
  if (typeof presented !== 'string' || presented.length !== session.csrf.length) return 'missing CSRF token';
  if (!timingSafeEqual(Buffer.from(presented), Buffer.from(session.csrf))) return 'wrong CSRF token';
  return undefined;
}

/** The Set-Cookie value of a session (or of its removal, with `maxAgeSeconds` 0). */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
