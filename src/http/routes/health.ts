import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { LightningBackend } from '../../lightning/backend.js';

const HealthBody = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  lightning: Type.Union([Type.Literal('connected'), Type.Literal('disconnected')]),
});

/** Public: liveness and whether the Lightning node answers. Reveals nothing else. */
export const healthRoutes: FastifyPluginAsyncTypebox<{ backend: LightningBackend }> = async (
  app,
  { backend },
) => {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: { tags: ['health'], response: { 200: HealthBody, 503: HealthBody } },
    },
    async (_req, reply) => {
      const lightning = backend.connectionState;
      return reply
        .code(lightning === 'connected' ? 200 : 503)
        .send({ status: lightning === 'connected' ? 'ok' : 'degraded', lightning });
    },
  );
};
