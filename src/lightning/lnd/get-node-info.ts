import { getWalletInfo } from 'ln-service';
import type { NodeInfo } from '../types.js';
import type { LndContext } from './context.js';
import { lndCall } from './map-error.js';

export async function getNodeInfo({ lnd }: LndContext): Promise<NodeInfo> {
  const info = await lndCall('getNodeInfo', () => getWalletInfo({ lnd }));
  const chain = info.chains[0] ?? '';
  return {
    pubkey: info.public_key,
    alias: info.alias,
    version: info.version,
    network: networkOfChain(chain),
    blockHeight: info.current_block_height,
    syncedToChain: info.is_synced_to_chain,
    syncedToGraph: info.is_synced_to_graph === true,
    activeChannels: info.active_channels_count,
    peers: info.peers_count,
  };
}

const CHAINS: Record<string, string> = {
  '6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000': 'mainnet',
  '43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000': 'testnet',
  '06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f': 'regtest',
  f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000: 'signet',
};

function networkOfChain(chain: string): string {
  return CHAINS[chain] ?? 'unknown';
}
