import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolvePolarNode } from '../../../src/config/polar.js';

function polarRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'polar-'));
  mkdirSync(join(root, 'networks'), { recursive: true });
  const lnd = (id: number, name: string, extra: object = {}) => ({
    id,
    name,
    implementation: 'LND',
    version: '0.18.4-beta',
    ...extra,
  });
  writeFileSync(
    join(root, 'networks', 'networks.json'),
    JSON.stringify({
      version: '3.0.0',
      networks: [
        {
          id: 1,
          name: 'dev',
          status: 'Started',
          path: join(root, 'networks', '1'),
          nodes: {
            bitcoin: [],
            lightning: [
              lnd(0, 'alice', {
                paths: { tlsCert: '/p/alice/tls.cert', adminMacaroon: '/p/alice/admin.macaroon' },
                ports: { grpc: 10001, rest: 8081, p2p: 9735 },
              }),
              lnd(1, 'bob'),
              { id: 2, name: 'carol', implementation: 'c-lightning' },
            ],
          },
        },
      ],
    }),
  );
  return root;
}

describe('resolvePolarNode', () => {
  const root = polarRoot();

  it('finds a node by network name or id and uses its recorded paths and ports', () => {
    const expected = {
      socket: '127.0.0.1:10001',
      cert: '/p/alice/tls.cert',
      macaroon: '/p/alice/admin.macaroon',
      version: '0.18.4-beta',
    };
    expect(resolvePolarNode({ network: 'dev', node: 'alice', dataDir: root })).toEqual(expected);
    expect(resolvePolarNode({ network: '1', node: 'alice', dataDir: root })).toEqual(expected);
  });

  it("falls back to Polar's default layout and ports", () => {
    const bob = resolvePolarNode({ network: 'dev', node: 'bob', dataDir: root });
    expect(bob.socket).toBe('127.0.0.1:10002');
    expect(bob.cert).toBe(join(root, 'networks', '1', 'volumes', 'lnd', 'bob', 'tls.cert'));
    expect(bob.macaroon).toBe(
      join(
        root,
        'networks',
        '1',
        'volumes',
        'lnd',
        'bob',
        'data',
        'chain',
        'bitcoin',
        'regtest',
        'admin.macaroon',
      ),
    );
  });

  it('explains what is missing', () => {
    expect(() => resolvePolarNode({ network: 'prod', node: 'alice', dataDir: root })).toThrow(
      /no Polar network "prod" \(found: 1:dev\)/,
    );
    expect(() => resolvePolarNode({ network: 'dev', node: 'dave', dataDir: root })).toThrow(
      /no lightning node "dave"/,
    );
    expect(() => resolvePolarNode({ network: 'dev', node: 'carol', dataDir: root })).toThrow(
      /runs c-lightning/,
    );
    expect(() => resolvePolarNode({ network: 'dev', node: 'alice', dataDir: join(root, 'nope') })).toThrow(
      /cannot read Polar/,
    );
  });
});
