import { describe, expect, it } from 'vitest';
import { forbiddenRange, inCidr, parseAddress, parseCidr } from '../../../src/net/address.js';

const range = (ip: string): string | undefined => {
  const a = parseAddress(ip);
  if (a === undefined) throw new Error(`not an address: ${ip}`);
  return forbiddenRange(a);
};

describe('forbiddenRange', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared (CGNAT)'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['198.18.0.1', 'benchmarking'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::127.0.0.1', 'reserved'],
    ['::ffff:0:808:808', 'reserved'], // IPv4-translated
    ['::1:0:0:1', 'reserved'], // unassigned, in ::/8
    ['64:ff9b::a00:1', 'private'],
    ['2002:7f00:1::', 'loopback'],
    ['2001:db8::1', 'documentation'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['[::1]', 'loopback'],
  ])('refuses %s (%s)', (ip, why) => {
    expect(range(ip)).toBe(why);
  });

  it.each([
    '1.1.1.1',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '93.184.216.34',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2606:4700:4700::1111',
    '2a00:1450::1',
  ])('accepts the public address %s', (ip) => {
    expect(range(ip)).toBeUndefined();
  });

  it('parses only address literals', () => {
    for (const bad of ['example.com', '1.2.3', '1.2.3.256', '::g', 'fe80::1%eth0', '', '01.2.3.4'])
      expect(parseAddress(bad)).toBeUndefined();
  });
});

describe('parseCidr', () => {
  it('matches v4 blocks (also in their mapped form) and v6 blocks', () => {
    const lan = parseCidr('192.168.10.0/24')!;
    expect(inCidr(parseAddress('192.168.10.77')!, lan)).toBe(true);
    expect(inCidr(parseAddress('::ffff:192.168.10.77')!, lan)).toBe(true);
    expect(inCidr(parseAddress('192.168.11.1')!, lan)).toBe(false);
    const single = parseCidr('10.0.0.5')!;
    expect(inCidr(parseAddress('10.0.0.5')!, single)).toBe(true);
    expect(inCidr(parseAddress('10.0.0.6')!, single)).toBe(false);
    const ula = parseCidr('fd00::/8')!;
    expect(inCidr(parseAddress('fd12::1')!, ula)).toBe(true);
    expect(inCidr(parseAddress('fc00::1')!, ula)).toBe(false);
  });

  it('refuses malformed blocks', () => {
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/x', '10.0.0.0/8/1', 'host/8'])
      expect(parseCidr(bad)).toBeUndefined();
  });
});
