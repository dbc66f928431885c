import { lazyCompilers } from './lazy-compilers.js';
import { clusterRoutes } from './routes/cluster.js';
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
import { frameworkErrors, installRouting, MAX_PARAM_LENGTH } from './routing.js';
import type { OperatorAuth } from './operator-auth.js';
import { healthRoutes } from './routes/health.js';
import { nodeRoutes } from './routes/node.js';
import { alertRoutes } from './routes/alerts.js';
import { accountRoutes, type AccountServices } from './routes/accounts.js';
import { installAuth } from './auth.js';
import { paidServiceRoutes, type PaidServicesAdmin } from './routes/paid-services.js';
import { installHttpMetrics, metricsRoutes, type HttpMetrics } from './routes/metrics.js';
import type { ConsoleSessions } from './console-session.js';
import { consoleSessionRoutes } from './routes/console-session.js';
import { consoleRoutes } from './routes/console.js';

export interface AppDeps {
  backend: LightningBackend;
  operatorAuth: OperatorAuth;
  logger?: FastifyBaseLogger;
  /** Accounts, payments and keys; absent in a gateway that only exposes its node. */
  accounts?: AccountServices;
  /** The L402 proxy's services, changed live by the admin API (with accounts, when the proxy runs). */
  paidServices?: PaidServicesAdmin;
  /** Prometheus metrics at /metrics (operator key, or this scrape token). */
  metrics?: { metrics: HttpMetrics; scrapeToken?: OperatorAuth };
  /** Console sessions: a login exchanges the operator key for a session cookie the API accepts. */
  consoleSessions?: ConsoleSessions;
  /** The built console's directory (default: dist/console); served at /console with the sessions. */
  consoleDir?: string;
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
    // Unknown fields are an error, not silently dropped; a JSON type is never coerced into another
    // (fastify's default turns 9007199254740993 into "9007199254740992" and ["1"] into "1");
    // `verbose` lets the error handler tell an amount's error from others.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, verbose: true } },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    schemaController: { compilersFactory: lazyCompilers() },
  }).withTypeProvider<TypeBoxTypeProvider>();
  installErrorHandling(app);
  installRouting(app);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Coulomb gateway', version: '0.1.0' },
      components: {
        securitySchemes: {
          operator: { type: 'http', scheme: 'bearer', description: 'the operator key' },
          accountKey: { type: 'http', scheme: 'bearer', description: 'an account API key (ck_...)' },
          scrapeToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'the metrics scrape token (/metrics only)',
          },
        },
      },
    },
  });
  // The API documentation is public: every route the UI plugin registers is marked so, here only.
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), public: true };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  });

  installAuth(app, deps.operatorAuth, deps.accounts?.apiKeys, deps.consoleSessions);
  if (deps.consoleSessions) {
    await app.register(consoleSessionRoutes, { sessions: deps.consoleSessions, operator: deps.operatorAuth });
    await app.register(consoleRoutes, deps.consoleDir !== undefined ? { dir: deps.consoleDir } : {});
  }
  if (deps.metrics) {
    installHttpMetrics(app, deps.metrics.metrics);
    await app.register(metricsRoutes, { ...deps.metrics, operator: deps.operatorAuth });
  }

  await app.register(healthRoutes, { backend: deps.backend });
  await app.register(nodeRoutes, { backend: deps.backend });
  if (deps.accounts) {
    await app.register(accountRoutes, deps.accounts);
    const { ledger, payments } = deps.accounts;
    await app.register(alertRoutes, { backend: deps.backend, ledger, payments });
    if (deps.accounts.owned) await app.register(clusterRoutes, { owned: deps.accounts.owned });
  }
  if (deps.paidServices && deps.accounts?.l402) {
    const { ledger, payments, l402 } = deps.accounts;
    await app.register(paidServiceRoutes, {
      ...deps.paidServices,
      credentials: { ledger, invoices: payments, revocations: l402.revocations },
    });
  }
  return app;
}
