import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../domain/errors.js';
import type { LndConfig, PolarConfig } from './schema.js';

interface PolarLightningNode {
  id: number;
  name: string;
  implementation: string;
  version?: string;
  paths?: { tlsCert?: string; adminMacaroon?: string; invoiceMacaroon?: string; readonlyMacaroon?: string };
  ports?: { grpc?: number; rest?: number; p2p?: number };
}

interface PolarNetwork {
  id: number;
  name: string;
  status?: string;
  path?: string;
  nodes?: { lightning?: PolarLightningNode[] };
}

export function polarDataRoot(explicit?: string): string {
  if (explicit) return explicit;
  const xdg = join(homedir(), '.local', 'share', 'polar');
  return existsSync(xdg) ? xdg : join(homedir(), '.polar');
}

/** Finds an LND node of a Polar network (by network name or id, node name) and returns how to reach it. */
export function resolvePolarNode(config: PolarConfig): LndConfig & { version?: string } {
  const root = polarDataRoot(config.dataDir);
  const index = join(root, 'networks', 'networks.json');
  let parsed: { networks?: PolarNetwork[] };
  try {
    parsed = JSON.parse(readFileSync(index, 'utf8')) as { networks?: PolarNetwork[] };
  } catch (err) {
    throw new ConfigError(`cannot read Polar's network list at ${index}: ${(err as Error).message}`);
  }
  const networks = parsed.networks ?? [];
  const network = networks.find((n) => n.name === config.network || String(n.id) === config.network);
  if (!network) {
    const names = networks.map((n) => `${n.id}:${n.name}`).join(', ') || 'none';
    throw new ConfigError(`no Polar network "${config.network}" (found: ${names})`);
  }
  const nodes = network.nodes?.lightning ?? [];
  const node = nodes.find((n) => n.name === config.node);
  if (!node)
    throw new ConfigError(
      `Polar network "${network.name}" has no lightning node "${config.node}" (found: ${nodes.map((n) => n.name).join(', ') || 'none'})`,
    );
  if (node.implementation !== 'LND')
    throw new ConfigError(`Polar node "${node.name}" runs ${node.implementation}; Coulomb needs LND`);
  const netDir = network.path ?? join(root, 'networks', String(network.id));
  const nodeDir = join(netDir, 'volumes', 'lnd', node.name);
  const cert = node.paths?.tlsCert ?? join(nodeDir, 'tls.cert');
  const macaroon =
    node.paths?.adminMacaroon ?? join(nodeDir, 'data', 'chain', 'bitcoin', 'regtest', 'admin.macaroon');
  const grpc = node.ports?.grpc ?? 10001 + node.id;
  const out: LndConfig & { version?: string } = { socket: `127.0.0.1:${grpc}`, cert, macaroon };
  if (node.version) out.version = node.version;
  return out;
}
