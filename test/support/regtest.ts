import { inject } from 'vitest';
import type { AuthenticatedLnd } from 'lightning';
import { LndBackend } from '../../src/lightning/lnd/lnd-backend.js';
import { connectLnd } from '../../src/lightning/lnd/connect.js';
import { bakeGatewayMacaroon } from '../../src/lightning/lnd/bake-macaroon.js';
import type { NodeName } from '../../src/regtest/layout.js';
import type { NodeStatus } from '../../src/regtest/network.js';
import { BtcdRpc } from '../../src/regtest/btcd-rpc.js';

export function node(name: NodeName): NodeStatus {
  const n = inject('regtest').nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no regtest node ${name}`);
  return n;
}

export function creds(name: NodeName): { socket: string; cert: string; macaroon: string } {
  const n = node(name);
  return { socket: n.grpcSocket, cert: n.tlsCert, macaroon: n.adminMacaroon };
}

/** An adapter on `name` holding only the gateway's least-privilege macaroon, as in production. */
export async function backendFor(name: NodeName): Promise<LndBackend> {
  const macaroon = await bakeGatewayMacaroon({ lnd: await rawLnd(name) });
  return LndBackend.connect({ ...creds(name), macaroon }, { intervalMs: 500 });
}

export function rawLnd(name: NodeName): Promise<AuthenticatedLnd> {
  return connectLnd(creds(name));
}

export function btcd(): BtcdRpc {
  const b = inject('regtest').btcd;
  return new BtcdRpc(Number(b.rpcSocket.split(':')[1]), b.rpcCert, b.rpcUser, b.rpcPass);
}

/** Polls until `probe` returns a value (not undefined) or the time runs out. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
