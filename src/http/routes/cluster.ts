import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { LeaderOwnedServices } from '../../cluster/leader-owned.js';
import { ErrorResponses } from '../schemas.js';

const ClusterBody = Type.Object(
  {
    store: Type.Union([Type.Literal('embedded'), Type.Literal('shared')]),
    instanceId: Type.String(),
    leader: Type.Boolean(),
    leaderOwnedServices: Type.Union(
      [Type.Literal('here'), Type.Literal('starting'), Type.Literal('elsewhere')],
      {
        description:
          'where streams, escrows, tasks, auctions, energy and device commerce are served: here, here once loaded (just elected), or on the leader (forwarded)',
      },
    ),
  },
  { additionalProperties: false },
);

/** The operator's view of this instance in its deployment: store, leadership, where leader-owned requests go. */
export const clusterRoutes: FastifyPluginAsyncTypebox<{ owned: LeaderOwnedServices }> = async (
  app,
  { owned },
) => {
  app.get(
    '/v1/cluster',
    {
      schema: {
        tags: ['node'],
        security: [{ operator: [] }],
        response: { 200: ClusterBody, ...ErrorResponses },
      },
    },
    async () => ({
      store: owned.shared ? ('shared' as const) : ('embedded' as const),
      instanceId: owned.instanceId,
      leader: owned.leading,
      leaderOwnedServices: owned.where(),
    }),
  );
};
