import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { LightningBackend } from '../../lightning/backend.js';
import { ErrorResponses, MsatString } from '../schemas.js';

const NodeInfoBody = Type.Object(
  {
    pubkey: Type.String(),
    alias: Type.String(),
    version: Type.String(),
    network: Type.String(),
    blockHeight: Type.Integer(),
    syncedToChain: Type.Boolean(),
    syncedToGraph: Type.Boolean(),
    activeChannels: Type.Integer(),
    peers: Type.Integer(),
    capabilities: Type.Record(Type.String(), Type.Boolean()),
  },
  { additionalProperties: false },
);

const BalancesBody = Type.Object(
  {
    channelLocalMsat: MsatString,
    channelRemoteMsat: MsatString,
    channelPendingMsat: MsatString,
    onchainConfirmedMsat: MsatString,
    onchainUnconfirmedMsat: MsatString,
  },
  { additionalProperties: false },
);

/** Operator-only: the gateway's own node. */
export const nodeRoutes: FastifyPluginAsyncTypebox<{ backend: LightningBackend }> = async (
  app,
  { backend },
) => {
  app.get(
    '/v1/node',
    {
      schema: {
        tags: ['node'],
        security: [{ operator: [] }],
        response: { 200: NodeInfoBody, ...ErrorResponses },
      },
    },
    async () => ({ ...(await backend.getNodeInfo()), capabilities: { ...backend.capabilities } }),
  );
  app.get(
    '/v1/node/balances',
    {
      schema: {
        tags: ['node'],
        security: [{ operator: [] }],
        response: { 200: BalancesBody, ...ErrorResponses },
      },
    },
    async () => {
      const b = await backend.getBalances();
      return {
        channelLocalMsat: b.channelLocalMsat.toString(),
        channelRemoteMsat: b.channelRemoteMsat.toString(),
        channelPendingMsat: b.channelPendingMsat.toString(),
        onchainConfirmedMsat: b.onchainConfirmedMsat.toString(),
        onchainUnconfirmedMsat: b.onchainUnconfirmedMsat.toString(),
      };
    },
  );
};
