import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { CodedError, ConfigError } from '../domain/errors.js';
import { forbiddenRange, inCidr, parseAddress, parseCidr, type Address, type Cidr } from './address.js';

export const OutboundErrorCode = {
  /** The URL is not one the gateway may call (scheme, credentials, or a non-public address). */
  URL_FORBIDDEN: 'OUTBOUND_URL_FORBIDDEN',
  /** The call was made (or refused after DNS) and gave no usable answer; details are for the log. */
  FAILED: 'OUTBOUND_FAILED',
} as const;
export type OutboundErrorCode = (typeof OutboundErrorCode)[keyof typeof OutboundErrorCode];

const STATUS: Record<OutboundErrorCode, number> = { OUTBOUND_URL_FORBIDDEN: 400, OUTBOUND_FAILED: 502 };

export class OutboundError extends CodedError<OutboundErrorCode> {
  constructor(code: OutboundErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, STATUS, details);
  }
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to (injectable for tests). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

export interface OutboundOptions {
  /**
   * Operator exceptions: host names (exact, case-insensitive) the gateway may call whatever they
   * resolve to, and IP addresses or CIDR blocks it may reach although they are not public.
   */
  allow?: readonly string[];
  resolve?: Resolver;
}

export interface PostJsonOptions {
  timeoutMs: number;
  /** The largest answer read (default 64 KiB); a longer one is a failure. */
  maxBytes?: number;
}

const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

export function bare(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * The one rule for every URL an untrusted party can make the gateway call (escrow verifiers):
 * http(s) only, no credentials in the URL, and every address the host resolves to must be public
 * unicast — not loopback, private, CGNAT, link-local (cloud metadata), multicast, unspecified,
 * broadcast, reserved, nor any of these inside IPv6 — unless the operator allows it. The request
 * goes to the addresses that were checked (no second DNS lookup to rebind), and redirects are
 * never followed.
 */
export class OutboundGuard {
  private readonly hosts = new Set<string>();
  private readonly blocks: Cidr[] = [];
  private readonly resolve: Resolver;

  constructor(options: OutboundOptions = {}) {
    for (const entry of options.allow ?? []) {
      const text = entry.trim().toLowerCase();
      const cidr = parseCidr(text);
      if (cidr) this.blocks.push(cidr);
      else if (HOST_NAME.test(text)) this.hosts.add(text.replace(/\.$/, ''));
      else
        throw new ConfigError(
          `outbound.allow: "${entry}" is neither a host name nor an IP address or CIDR block`,
        );
    }
    this.resolve = options.resolve ?? systemResolver;
  }

  /**
   * Checks what can be checked without DNS (at creation time): scheme, credentials, an address
   * literal's range, and `localhost` names. Throws OUTBOUND_URL_FORBIDDEN (400).
   */
  checkUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw this.forbidden('the URL is not valid');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw this.forbidden('only http and https URLs are allowed');
    if (url.username !== '' || url.password !== '')
      throw this.forbidden('credentials in the URL are not allowed');
    const host = bare(url.hostname).toLowerCase().replace(/\.$/, '');
    if (host === '') throw this.forbidden('the URL has no host');
    if (this.hosts.has(host)) return url;
    const literal = parseAddress(host);
    if (literal !== undefined) {
      if (this.refused(literal)) throw this.forbidden('the URL points to a non-public address');
    } else if (host === 'localhost' || host.endsWith('.localhost')) {
      throw this.forbidden('the URL points to a non-public address');
    }
    return url;
  }

  /**
   * Resolves the URL's host and checks every address (any forbidden one refuses the URL).
   * Throws OUTBOUND_URL_FORBIDDEN, or OUTBOUND_FAILED when the name does not resolve.
   */
  async target(raw: string): Promise<{ url: URL; addresses: ResolvedAddress[] }> {
    const url = this.checkUrl(raw);
    const host = bare(url.hostname);
    const literal = parseAddress(host);
    if (literal !== undefined)
      return { url, addresses: [{ address: host, family: host.includes(':') ? 6 : 4 }] };
    let addresses: ResolvedAddress[];
    try {
      addresses = await this.resolve(host);
    } catch (err) {
      throw new OutboundError(OutboundErrorCode.FAILED, `cannot resolve ${host}: ${(err as Error).message}`);
    }
    if (addresses.length === 0)
      throw new OutboundError(OutboundErrorCode.FAILED, `${host} resolves to no address`);
    if (this.hosts.has(host.toLowerCase().replace(/\.$/, ''))) return { url, addresses };
    for (const a of addresses) {
      const parsed = parseAddress(a.address);
      if (parsed === undefined || this.refused(parsed))
        throw this.forbidden(`${host} resolves to a non-public address`, { address: a.address });
    }
    return { url, addresses };
  }

  /**
   * POSTs a JSON body to a checked URL, connecting only to the checked addresses; answers the
   * status and the parsed JSON body. A redirect, a non-JSON body, a body over `maxBytes`, a
   * timeout or a connection error throws OUTBOUND_FAILED with the reason (for the log).
   */
  async postJson(
    raw: string,
    body: unknown,
    options: PostJsonOptions,
  ): Promise<{ status: number; body: unknown }> {
    const { url, addresses } = await this.target(raw);
    const answer = await pinnedRequest(url, addresses, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(body)),
      timeoutMs: options.timeoutMs,
      maxBytes: options.maxBytes ?? 64 * 1024,
      refuseRedirects: true,
    });
    try {
      return { status: answer.status, body: JSON.parse(answer.body.toString('utf8')) as unknown };
    } catch {
      throw new OutboundError(OutboundErrorCode.FAILED, `the answer (${answer.status}) is not JSON`);
    }
  }

  private refused(a: Address): boolean {
    return forbiddenRange(a) !== undefined && !this.blocks.some((b) => inCidr(a, b));
  }

  private forbidden(message: string, details?: Record<string, unknown>): OutboundError {
    return new OutboundError(OutboundErrorCode.URL_FORBIDDEN, message, details);
  }
}

/** What `pinnedRequest` sends. */
export interface PinnedRequestOptions {
  method: string;
  headers: Record<string, string>;
  body?: Buffer | undefined;
  timeoutMs: number;
  /** The answer is read up to this many bytes; a longer one fails. */
  maxBytes: number;
  /** A 3xx fails as soon as its head arrives (otherwise it is answered like any status). */
  refuseRedirects?: boolean;
}

/** A whole answer of `pinnedRequest`. */
export interface PinnedAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP(S) request to a URL already checked by `OutboundGuard.target`, connected only to the
 * checked addresses (no second DNS lookup), never through a shared agent, redirects never
 * followed. A timeout, a body over `maxBytes` or a connection error throws OUTBOUND_FAILED with
 * the reason (for the log).
 */
export function pinnedRequest(
  url: URL,
  addresses: readonly ResolvedAddress[],
  options: PinnedRequestOptions,
): Promise<PinnedAnswer> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers = { ...options.headers };
  if (options.body) headers['content-length'] = String(options.body.length);
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new OutboundError(OutboundErrorCode.FAILED, message));
    };
    const req = send(
      {
        protocol: url.protocol,
        host: bare(url.hostname),
        port: url.port === '' ? undefined : Number(url.port),
        path: url.pathname + url.search,
        method: options.method,
        headers,
        lookup: pinnedLookup(addresses),
        agent: false,
      },
      (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        if (options.refuseRedirects && status >= 300 && status < 400)
          return fail(`redirect refused (${status})`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > options.maxBytes) fail(`the answer is larger than ${options.maxBytes} bytes`);
          else chunks.push(c);
        });
        res.on('error', (err) => fail(err.message));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status, headers: res.headers, body: Buffer.concat(chunks) });
        });
      },
    );
    const timer = setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), options.timeoutMs);
    req.on('error', (err) => fail(err.message));
    req.end(options.body);
  });
}

/** A `lookup` for node:net that answers only the addresses already checked (no DNS rebinding). */
export function pinnedLookup(addresses: readonly ResolvedAddress[]): LookupFunction {
  return (_hostname, options, callback) => {
    const wanted = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const pool = addresses.filter((a) => !wanted || a.family === wanted);
    const usable = pool.length > 0 ? pool : [...addresses];
    if (options.all) return callback(null, usable);
    const first = usable[0]!;
    callback(null, first.address, first.family);
  };
}
