import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import { pino } from 'pino';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { LightningBackend } from '../lightning/backend.js';
import { installErrorHandling } from './errors.js';
import type { OperatorAuth } from './operator-auth.js';
import { healthRoutes } from './routes/health.js';
import { nodeRoutes } from './routes/node.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes are protected unless they opt out with `public: true`. */
    public?: boolean;
  }
}

export interface AppDeps {
  backend: LightningBackend;
  operatorAuth: OperatorAuth;
  logger?: FastifyBaseLogger;
}

function bearer(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m?.[1];
}

export type CoulombApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export async function buildApp(deps: AppDeps): Promise<CoulombApp> {
  // Fastify's request serializer logs method and url only: headers, and so credentials, never reach the log.
  const app = Fastify({
    loggerInstance: deps.logger ?? pino({ enabled: false }),
  }).withTypeProvider<TypeBoxTypeProvider>();
  installErrorHandling(app);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Coulomb gateway', version: '0.1.0' },
      components: { securitySchemes: { operator: { type: 'http', scheme: 'bearer' } } },
    },
  });
  // The API documentation is public: every route the UI plugin registers is marked so, here only.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), public: true };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  });

  // Protected by default: only routes that declare config.public skip the operator check.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.public === true) return;
    if (req.routeOptions.url === undefined) return; // unknown route: let the 404 handler answer
    if (!deps.operatorAuth.verify(bearer(req.headers.authorization))) {
      return reply
        .code(401)
        .send({ error: { code: 'UNAUTHORIZED', message: 'missing or invalid operator key' } });
    }
  });

  await app.register(healthRoutes, { backend: deps.backend });
  await app.register(nodeRoutes, { backend: deps.backend });
  return app;
}
