import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { OperatorAuth } from '../operator-auth.js';
import { ErrorBody } from '../schemas.js';

/** What the HTTP layer needs of the metrics (the composition root gives the Prometheus registry). */
export interface HttpMetrics {
  httpRequest(method: string, route: string, status: number, seconds: number): void;
  text(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsOptions {
  metrics: HttpMetrics;
  operator: OperatorAuth;
  /** A scrape token that opens `/metrics` only (config `metrics.scrapeToken`); its digest. */
  scrapeToken?: OperatorAuth;
}

/**
 * Every answered request, by its route's pattern (`/v1/accounts/:id`; `unmatched` for a 404 of
 * no route), never the URL: the label's values stay as few as the routes.
 */
export function installHttpMetrics(app: FastifyInstance, metrics: HttpMetrics): void {
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpRequest(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });
}

const bearer = (header: string | undefined): string | undefined =>
  header ? /^Bearer\s+(\S+)$/i.exec(header)?.[1] : undefined;

/** `GET /metrics`: the Prometheus text format, for the operator key or the scrape token. */
export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsOptions> = async (app, o) => {
  app.get(
    '/metrics',
    {
      // Checked here: the scrape token opens this route and no other.
      config: { public: true },
      schema: {
        tags: ['metrics'],
        security: [{ operator: [] }, { scrapeToken: [] }],
        description:
          'Prometheus metrics (text exposition format 0.0.4): HTTP and proxy requests and ' +
          'latencies by route and status, L402 challenges issued and paid, revenue, payments by ' +
          'status and fees, ledger group-commit batches, LND state and call latencies, devices, ' +
          'MQTT messages, process and event-loop figures. The operator key or the scrape token.',
        produces: ['text/plain'],
        response: {
          200: Type.String({ description: 'text/plain; version=0.0.4' }),
          401: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const token = bearer(req.headers.authorization);
      if (!o.operator.verify(token) && !o.scrapeToken?.verify(token))
        return reply
          .code(401)
          .send({ error: { code: 'UNAUTHORIZED', message: 'missing or invalid credentials' } });
      const text = await o.metrics.text();
      return reply.type(o.metrics.contentType).send(text);
    },
  );
};
