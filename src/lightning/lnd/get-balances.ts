import { getChainBalance, getChannelBalance, getPendingChainBalance } from 'ln-service';
import { msat, satToMsat } from '../../domain/msat.js';
import type { Balances } from '../types.js';
import type { LndContext } from './context.js';
import { lndCall } from './map-error.js';

export async function getBalances({ lnd }: LndContext): Promise<Balances> {
  const [channels, chain, pendingChain] = await Promise.all([
    lndCall('getChannelBalance', () => getChannelBalance({ lnd })),
    lndCall('getChainBalance', () => getChainBalance({ lnd })),
    lndCall('getPendingChainBalance', () => getPendingChainBalance({ lnd })),
  ]);
  return {
    channelLocalMsat: msat(channels.channel_balance_mtokens ?? String(channels.channel_balance * 1000)),
    channelRemoteMsat: msat(channels.inbound_mtokens ?? String((channels.inbound ?? 0) * 1000)),
    channelPendingMsat: satToMsat(channels.pending_balance),
    onchainConfirmedMsat: satToMsat(chain.chain_balance),
    onchainUnconfirmedMsat: satToMsat(pendingChain.pending_chain_balance),
  };
}
