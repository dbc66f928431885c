import { isIPv4, isIPv6 } from 'node:net';

/**
 * IP addresses as 128-bit integers (IPv4 as its IPv4-mapped IPv6 form `::ffff:a.b.c.d`), so one
 * table of ranges covers both families and a mapped address is judged like the IPv4 it carries.
 */
export type Address = bigint;

const MAPPED_PREFIX = 0xffffn << 32n;

function parseV4(text: string): bigint | undefined {
  if (!isIPv4(text)) return undefined;
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(text: string): bigint | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let head = text;
  let tailV4: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const [left = '', right] = head.split('::');
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const missing = 8 - l.length - r.length;
  const all = right === undefined ? l : [...l, ...Array<string>(missing).fill('0'), ...r];
  if (all.length !== 8) return undefined;
  let value = all.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (tailV4 !== undefined) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

/** Parses an IPv4 or IPv6 literal (brackets allowed, zone ids refused); undefined if it is not one. */
export function parseAddress(text: string): Address | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v4 = parseV4(bare);
  if (v4 !== undefined) return MAPPED_PREFIX | v4;
  return parseV6(bare);
}

/** A CIDR block over the 128-bit form. */
export interface Cidr {
  base: Address;
  bits: number;
}

function masked(a: Address, bits: number): Address {
  const hostBits = BigInt(128 - bits);
  return (a >> hostBits) << hostBits;
}

/** `10.0.0.0/8`, `fd00::/8`, or a single address; undefined if it is none of these. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = '', len, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const a = parseAddress(addr);
  if (a === undefined) return undefined;
  const v4 = isIPv4(addr);
  const max = v4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const n = len === undefined ? max : Number(len);
  if (n > max) return undefined;
  const bits = v4 ? 96 + n : n;
  return { base: masked(a, bits), bits };
}

export function inCidr(a: Address, c: Cidr): boolean {
  return masked(a, c.bits) === c.base;
}

function block(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad built-in range ${text}`);
  return c;
}

/**
 * Where an outbound request from the gateway must not go: every address that is not globally
 * reachable unicast (IANA special-purpose registries), by name. IPv4 blocks also match their
 * IPv4-mapped IPv6 form.
 */
const SPECIAL: readonly (readonly [string, Cidr])[] = [
  ['unspecified', block('0.0.0.0/8')],
  ['private', block('10.0.0.0/8')],
  ['shared (CGNAT)', block('100.64.0.0/10')],
  ['loopback', block('127.0.0.0/8')],
  ['link-local', block('169.254.0.0/16')],
  ['private', block('172.16.0.0/12')],
  ['reserved', block('192.0.0.0/24')],
  ['documentation', block('192.0.2.0/24')],
  ['reserved', block('192.88.99.0/24')],
  ['private', block('192.168.0.0/16')],
  ['benchmarking', block('198.18.0.0/15')],
  ['documentation', block('198.51.100.0/24')],
  ['documentation', block('203.0.113.0/24')],
  ['multicast', block('224.0.0.0/4')],
  ['broadcast', block('255.255.255.255/32')],
  ['reserved', block('240.0.0.0/4')],
  ['unspecified', block('::/128')],
  ['loopback', block('::1/128')],
  // The rest of ::/8 (IPv4-compatible and unassigned) except the IPv4-mapped block, judged above.
  ['reserved', block('::/96')],
  ['reserved', block('64:ff9b:1::/48')],
  ['discard', block('100::/64')],
  ['reserved', block('2001::/23')],
  ['documentation', block('2001:db8::/32')],
  ['documentation', block('3fff::/20')],
  ['unique-local', block('fc00::/7')],
  ['link-local', block('fe80::/10')],
  ['site-local', block('fec0::/10')],
  ['multicast', block('ff00::/8')],
];

const NAT64 = block('64:ff9b::/96');
const SIX_TO_FOUR = block('2002::/16');

/**
 * Why the gateway must not connect to this address (`loopback`, `private`, `link-local`...), or
 * undefined for a globally reachable unicast address. IPv4 addresses carried in IPv6 (mapped,
 * NAT64, 6to4) are judged by the IPv4 address they reach.
 */
export function forbiddenRange(a: Address): string | undefined {
  const embedded = inCidr(a, NAT64)
    ? a & 0xffffffffn
    : inCidr(a, SIX_TO_FOUR)
      ? (a >> 80n) & 0xffffffffn
      : undefined;
  if (embedded !== undefined) return forbiddenRange(MAPPED_PREFIX | embedded);
  for (const [name, c] of SPECIAL) if (inCidr(a, c)) return name;
  // The rest of ::/8 (IPv4-translated ::ffff:0:0:0/96 and unassigned), all but the mapped block.
  if (a >> 120n === 0n && a >> 32n !== MAPPED_PREFIX >> 32n) return 'reserved';
  return undefined;
}

export function isIpLiteral(host: string): boolean {
  return parseAddress(host) !== undefined;
}
