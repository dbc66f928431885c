import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Longest path parameter the router takes. Ids are at most 128 characters (the schemas say so and
 * answer 400 above that); only a URL far beyond any valid one is refused by the router, with 414.
 */
export const MAX_PARAM_LENGTH = 1024;

const errorBody = (code: string, message: string) => ({ error: { code, message } });

/** Router errors (`frameworkErrors`): a bad %-encoding or an absurdly long parameter, in the error envelope. */
export function frameworkErrors(
  err: Error & { code?: string },
  _req: FastifyRequest,
  reply: FastifyReply,
): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH')
    void reply.code(414).send(errorBody('URI_TOO_LONG', 'a path parameter is too long'));
  else if (err.code === 'FST_ERR_BAD_URL')
    void reply.code(400).send(errorBody('BAD_URL', 'the path is not a valid URL (bad percent-encoding)'));
  else void reply.code(400).send(errorBody('BAD_REQUEST', err.message));
}

/** A route's URL pattern (`/v1/accounts/:id/policy`, `/docs/*`) as a regular expression over a path. */
function patternOf(url: string): RegExp {
  const parts = url.split('/').map((seg) => {
    if (seg.startsWith(':')) return '[^/]+';
    if (seg === '*') return '.*';
    return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^${parts.join('/')}$`);
}

/**
 * Not found vs. method not allowed: a path some route serves, asked with a method none declares,
 * is a 405 with an `Allow` header; any other path is a 404. Both in the error envelope.
 */
export function installRouting(app: FastifyInstance): void {
  const routes: { pattern: RegExp; methods: string[] }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.push({ pattern: patternOf(route.url), methods: methods.map((m) => m.toUpperCase()) });
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const allowed = new Set<string>();
    for (const r of routes) if (r.pattern.test(path)) for (const m of r.methods) allowed.add(m);
    if (allowed.size > 0) {
      return reply
        .code(405)
        .header('allow', [...allowed].sort().join(', '))
        .send(errorBody('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}`));
    }
    return reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${path}`));
  });

  app.addHook('preValidation', async (req) => {
    // A POST without a body (no content at all) is an empty object: optional bodies stay optional.
    if (req.body === undefined && req.routeOptions.schema?.body !== undefined) req.body = {};
    const schema = req.routeOptions.schema?.querystring as QuerySchema | undefined;
    if (schema?.properties && req.query && typeof req.query === 'object')
      req.query = parseQuery(schema.properties, req.query as Record<string, unknown>);
  });
}

interface QuerySchema {
  properties?: Record<string, { type?: unknown }>;
}

const CANONICAL_INTEGER = /^-?(0|[1-9][0-9]*)$/;

/**
 * Query strings are text: the body's JSON is never coerced (ajv `coerceTypes: false`), so the
 * query's integers and booleans are read here, from their canonical spelling only (`5`, not `05`,
 * `5.0` or `1e1`; `true`/`false`). Anything else stays a string and fails the schema with a 400.
 */
function parseQuery(
  properties: Record<string, { type?: unknown }>,
  query: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...query };
  for (const [name, value] of Object.entries(query)) {
    const type = properties[name]?.type;
    if (typeof value !== 'string') continue;
    if ((type === 'integer' || type === 'number') && CANONICAL_INTEGER.test(value)) {
      const n = Number(value);
      if (Number.isSafeInteger(n)) out[name] = n;
    } else if (type === 'boolean' && (value === 'true' || value === 'false')) {
      out[name] = value === 'true';
    }
  }
  return out;
}
