import { join, resolve } from 'node:path';

export const NODE_NAMES = ['alice', 'bob', 'carol'] as const;
export type NodeName = (typeof NODE_NAMES)[number];

export const DEFAULT_BASE_PORT = 27400;
export const RPC_USER = 'coulomb';
export const RPC_PASS = 'coulomb-regtest';

export interface NodeLayout {
  name: NodeName;
  dir: string;
  grpcPort: number;
  restPort: number;
  p2pPort: number;
  tlsCert: string;
  adminMacaroon: string;
  invoiceMacaroon: string;
  readonlyMacaroon: string;
  logFile: string;
  pidFile: string;
}

export interface NetworkLayout {
  dataDir: string;
  basePort: number;
  btcd: {
    dir: string;
    rpcPort: number;
    p2pPort: number;
    rpcCert: string;
    rpcKey: string;
    logFile: string;
    pidFile: string;
  };
  nodes: Record<NodeName, NodeLayout>;
}

export interface NetworkOptions {
  /** Where btcd and the lnd nodes keep their data (default: ./.regtest). */
  dataDir?: string;
  /** First of the ports the network uses; two networks need bases at least 100 apart. */
  basePort?: number;
}

/** Every path and port of a network, derived from its data dir and base port alone. */
export function layoutOf(options: NetworkOptions = {}): NetworkLayout {
  const dataDir = resolve(options.dataDir ?? process.env['COULOMB_REGTEST_DIR'] ?? '.regtest');
  const basePort = options.basePort ?? Number(process.env['COULOMB_REGTEST_BASE_PORT'] ?? DEFAULT_BASE_PORT);
  if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65000) {
    throw new Error(`regtest base port must be an integer between 1024 and 65000, got ${basePort}`);
  }
  const btcdDir = join(dataDir, 'btcd');
  const nodes = {} as Record<NodeName, NodeLayout>;
  NODE_NAMES.forEach((name, i) => {
    const dir = join(dataDir, name);
    const mac = join(dir, 'data', 'chain', 'bitcoin', 'regtest');
    nodes[name] = {
      name,
      dir,
      grpcPort: basePort + 10 + i * 10,
      restPort: basePort + 11 + i * 10,
      p2pPort: basePort + 12 + i * 10,
      tlsCert: join(dir, 'tls.cert'),
      adminMacaroon: join(mac, 'admin.macaroon'),
      invoiceMacaroon: join(mac, 'invoice.macaroon'),
      readonlyMacaroon: join(mac, 'readonly.macaroon'),
      logFile: join(dir, 'lnd.out.log'),
      pidFile: join(dir, 'lnd.pid'),
    };
  });
  return {
    dataDir,
    basePort,
    btcd: {
      dir: btcdDir,
      rpcPort: basePort,
      p2pPort: basePort + 1,
      rpcCert: join(btcdDir, 'rpc.cert'),
      rpcKey: join(btcdDir, 'rpc.key'),
      logFile: join(btcdDir, 'btcd.out.log'),
      pidFile: join(btcdDir, 'btcd.pid'),
    },
    nodes,
  };
}
