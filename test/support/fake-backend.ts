import type { Capabilities, LightningBackend } from '../../src/lightning/backend.js';
import type { ConnectionState, NodeInfo } from '../../src/lightning/types.js';
import { msat } from '../../src/domain/msat.js';

const notImplemented = (): never => {
  throw new Error('not used by this test');
};

/** In-memory stand-in for unit tests of layers above the Lightning boundary. */
export function fakeBackend(
  overrides: Partial<LightningBackend> & { state?: ConnectionState; info?: Partial<NodeInfo> } = {},
): LightningBackend {
  const capabilities: Capabilities = {
    holdInvoices: true,
    keysend: true,
    receiveKeysend: true,
    customRecords: true,
    invoiceCatchUp: true,
  };
  const info: NodeInfo = {
    pubkey: '02' + 'ab'.repeat(32),
    alias: 'fake',
    version: '0.19.3-beta',
    network: 'regtest',
    blockHeight: 123,
    syncedToChain: true,
    syncedToGraph: true,
    activeChannels: 1,
    peers: 1,
    ...overrides.info,
  };
  return {
    capabilities,
    connectionState: overrides.state ?? 'connected',
    onConnectionChange: () => () => undefined,
    getNodeInfo: async () => info,
    getBalances: async () => ({
      channelLocalMsat: msat(5_000_000_000n),
      channelRemoteMsat: msat(5_000_000_001n),
      channelPendingMsat: msat(0),
      onchainConfirmedMsat: msat(100_000n),
      onchainUnconfirmedMsat: msat(0),
    }),
    createInvoice: notImplemented,
    decodeInvoice: notImplemented,
    lookupInvoice: notImplemented,
    subscribeInvoices: notImplemented,
    payInvoice: notImplemented,
    keysend: notImplemented,
    trackPayment: notImplemented,
    createHoldInvoice: notImplemented,
    settleHoldInvoice: notImplemented,
    cancelHoldInvoice: notImplemented,
    watchInvoice: notImplemented,
    close: async () => undefined,
    ...overrides,
  };
}
