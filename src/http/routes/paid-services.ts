import { Type, type Static, type TObject, type TSchema } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { listCredentials, type CredentialSources } from '../../l402/credentials.js';
import type { CatalogEntry, ServiceCatalog } from '../../proxy/catalog.js';
import { ServiceSchema } from '../../proxy/config.js';
import type { ServiceStats, StatsPeriod } from '../../proxy/stats.js';
import { ErrorResponses, literals, MsatString } from '../schemas.js';

/** What the paid-services admin API works on. */
export interface PaidServicesAdmin {
  catalog: ServiceCatalog;
  stats: ServiceStats;
}

const ServiceName = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' });
const NameParams = Type.Object({ name: ServiceName });

/**
 * A service as the API shows it: the upstream headers' names only (their values are secrets), the
 * upstream URL without its user name and password.
 */
const ServiceView = Type.Composite(
  [
    Type.Omit(ServiceSchema, ['headers']),
    Type.Object({
      upstreamCredentials: Type.Boolean({
        description: 'the upstream URL carries a user name or password (not shown)',
      }),
      headerNames: Type.Array(Type.String(), { description: 'headers added upstream (values not shown)' }),
      origin: literals(['config', 'api', 'config-changed'] as const),
      updatedAt: Type.Optional(Type.Integer({ description: 'last change by the API, unix ms' })),
    }),
  ],
  { additionalProperties: false },
);
type ServiceView = Static<typeof ServiceView>;

/**
 * A change of some fields; the others (the upstream headers too) stay as they are. Without the
 * service schema's defaults: a field left out must not be filled in (`pathPrefix: '/'`).
 */
const ServicePatch = withoutDefaults(
  Type.Partial(Type.Omit(ServiceSchema, ['name']), { additionalProperties: false }),
);

function withoutDefaults<T extends TObject>(schema: T): T {
  const properties: Record<string, TSchema> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    const copy: TSchema & { default?: unknown } = { ...property };
    delete copy.default;
    properties[name] = copy;
  }
  return { ...schema, properties };
}

const Bucket = Type.Object(
  {
    start: Type.Integer({ description: 'start of the period, unix ms (UTC)' }),
    requests: Type.Integer(),
    paidRequests: Type.Integer(),
    challenges: Type.Integer(),
    revenueMsat: MsatString,
  },
  { additionalProperties: false },
);

const Credential = Type.Object(
  {
    tokenId: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    service: Type.Optional(ServiceName),
    balanceMsat: MsatString,
    createdAt: Type.Integer(),
    revoked: Type.Boolean(),
    revokedAt: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);

function view(e: CatalogEntry): ServiceView {
  const { headers, ...rest } = e.service.config;
  const url = e.service.upstream;
  const upstreamCredentials = url.username !== '' || url.password !== '';
  let upstream = rest.upstream;
  if (upstreamCredentials) {
    const shown = new URL(url.href);
    shown.username = '';
    shown.password = '';
    upstream = shown.href;
  }
  return {
    ...rest,
    upstream,
    upstreamCredentials,
    headerNames: Object.keys(headers ?? {}),
    origin: e.origin,
    ...(e.updatedAt !== undefined ? { updatedAt: e.updatedAt } : {}),
  };
}

const tags = ['paid services'];
const security = [{ operator: [] }];
const DAY = 86_400_000;

/**
 * The admin API of the L402 proxy's paid services: list, add, change and remove services live
 * (persisted; the config file stays the seed), their revenue and request statistics, and the
 * credentials sold.
 */
export const paidServiceRoutes: FastifyPluginAsyncTypebox<
  PaidServicesAdmin & { credentials: CredentialSources }
> = async (app, { catalog, stats, credentials }) => {
  app.get(
    '/v1/proxy/services',
    {
      schema: {
        tags,
        security,
        description: 'The services the proxy serves now, in matching order (at most 1,000).',
        response: {
          200: Type.Object({ services: Type.Array(ServiceView) }, { additionalProperties: false }),
          ...ErrorResponses,
        },
      },
    },
    async () => ({ services: catalog.list().map(view) }),
  );

  app.post(
    '/v1/proxy/services',
    {
      schema: {
        tags,
        security,
        description:
          'Adds a service; the proxy serves it from the next request. Persisted across restarts ' +
          '(the config file is not rewritten). 409 SERVICE_EXISTS if the name is taken.',
        body: ServiceSchema,
        response: { 201: ServiceView, ...ErrorResponses },
      },
    },
    async (req, reply) => {
      const entry = await catalog.add(req.body);
      return reply.code(201).send(view(entry));
    },
  );

  app.get(
    '/v1/proxy/services/:name',
    {
      schema: { tags, security, params: NameParams, response: { 200: ServiceView, ...ErrorResponses } },
    },
    async (req) => view(catalog.require(req.params.name)),
  );

  app.put(
    '/v1/proxy/services/:name',
    {
      schema: {
        tags,
        security,
        description: 'Replaces a service (every field; the name stays). Effective from the next request.',
        params: NameParams,
        body: ServiceSchema,
        response: { 200: ServiceView, ...ErrorResponses },
      },
    },
    async (req) => view(await catalog.replace(req.params.name, req.body)),
  );

  app.patch(
    '/v1/proxy/services/:name',
    {
      schema: {
        tags,
        security,
        description:
          'Changes some fields of a service (prices, credit, rate limits...); the others, the ' +
          'upstream headers included, stay. Effective from the next request.',
        params: NameParams,
        body: ServicePatch,
        response: { 200: ServiceView, ...ErrorResponses },
      },
    },
    async (req) => view(await catalog.patch(req.params.name, req.body)),
  );

  app.delete(
    '/v1/proxy/services/:name',
    {
      schema: {
        tags,
        security,
        description:
          'Removes a service: its paths answer 404 NO_SERVICE from the next request. Credentials ' +
          'already sold keep their credit (a service added again under the name honours them).',
        params: NameParams,
        response: {
          200: Type.Object({ removed: ServiceName }, { additionalProperties: false }),
          ...ErrorResponses,
        },
      },
    },
    async (req) => {
      await catalog.remove(req.params.name);
      return { removed: req.params.name };
    },
  );

  app.get(
    '/v1/proxy/services/:name/stats',
    {
      schema: {
        tags,
        security,
        description:
          'Requests, paid requests, challenges and revenue of a service per hour or per day ' +
          '(UTC), for periods starting in [from, to) (default: the last 24 hours, or 30 days by ' +
          'day). Hourly figures are kept 31 days, daily ones two years. Periods without requests ' +
          'are absent. Removed services keep their figures.',
        params: NameParams,
        querystring: Type.Object(
          {
            period: Type.Optional(literals(['hour', 'day'] as const)),
            from: Type.Optional(Type.Integer({ minimum: 0, description: 'unix ms' })),
            to: Type.Optional(Type.Integer({ minimum: 0, description: 'unix ms' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 744 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            {
              service: ServiceName,
              period: literals(['hour', 'day'] as const),
              from: Type.Integer(),
              to: Type.Integer(),
              buckets: Type.Array(Bucket),
              totals: Type.Omit(Bucket, ['start']),
            },
            { additionalProperties: false },
          ),
          ...ErrorResponses,
        },
      },
    },
    async (req) => {
      const period: StatsPeriod = req.query.period ?? 'hour';
      const to = req.query.to ?? Date.now() + 1;
      const from = req.query.from ?? to - (period === 'hour' ? DAY : 30 * DAY);
      const buckets = await stats.buckets(req.params.name, period, {
        from,
        to,
        limit: req.query.limit ?? 744,
      });
      const totals = { requests: 0, paidRequests: 0, challenges: 0, revenueMsat: 0n };
      for (const b of buckets) {
        totals.requests += b.requests;
        totals.paidRequests += b.paidRequests;
        totals.challenges += b.challenges;
        totals.revenueMsat += b.revenueMsat;
      }
      return {
        service: req.params.name,
        period,
        from,
        to,
        buckets: buckets.map((b) => ({
          start: b.start,
          requests: b.requests,
          paidRequests: b.paidRequests,
          challenges: b.challenges,
          revenueMsat: b.revenueMsat.toString(),
        })),
        totals: { ...totals, revenueMsat: totals.revenueMsat.toString() },
      };
    },
  );

  app.get(
    '/v1/l402/credentials',
    {
      schema: {
        tags: ['l402'],
        security,
        description:
          'The paid L402 credentials (credit left, service, revoked or not) in token id order; ' +
          'pass `next` as `after` for the following page. Revoke one with POST /v1/l402/credentials/revoke.',
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            after: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            {
              credentials: Type.Array(Credential),
              next: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
            },
            { additionalProperties: false },
          ),
          ...ErrorResponses,
        },
      },
    },
    async (req) => {
      const page = await listCredentials(credentials, {
        limit: req.query.limit ?? 100,
        ...(req.query.after !== undefined ? { after: req.query.after } : {}),
      });
      return {
        credentials: page.credentials.map((c) => ({ ...c, balanceMsat: c.balanceMsat.toString() })),
        ...(page.next ? { next: page.next } : {}),
      };
    },
  );
};
