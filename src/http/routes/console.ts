import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorBody } from '../schemas.js';

/** The built console's files (scripts/build-console.ts) and their types: nothing else is served. */
const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/**
 * Where `npm run build` puts the console: dist/console, seen from dist/http/routes (the built
 * gateway) or from src/http/routes (run from the sources).
 */
export function defaultConsoleDir(): string | undefined {
  for (const rel of ['../../console/', '../../../dist/console/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return undefined;
}

const notBuilt = {
  error: { code: 'CONSOLE_NOT_BUILT', message: 'the console is not built: run npm run build' },
};

/**
 * The operator console's page and assets: public and static (read once, a few hundred kB at
 * most); the data they show comes from the JSON API, behind the console session.
 */
export const consoleRoutes: FastifyPluginAsyncTypebox<{ dir?: string }> = async (app, { dir }) => {
  const files = new Map<string, Buffer>();
  const from = dir ?? defaultConsoleDir();
  if (from)
    for (const name of ['index.html', ...Object.keys(ASSETS)])
      if (existsSync(join(from, name))) files.set(name, readFileSync(join(from, name)));
  const schema = { tags: ['console'], hide: true, response: { 200: Type.String(), 404: ErrorBody } };

  for (const url of ['/console', '/console/'])
    app.get(url, { config: { public: true }, schema }, async (_req, reply) => {
      const page = files.get('index.html');
      if (!page) return reply.code(404).send(notBuilt);
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-cache')
        .header(
          'content-security-policy',
          "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        )
        .header('x-content-type-options', 'nosniff')
        .send(page.toString('utf8'));
    });

  app.get(
    '/console/assets/:file',
    {
      config: { public: true },
      schema: {
        ...schema,
        params: Type.Object({ file: Type.String({ maxLength: 64 }) }),
      },
    },
    async (req, reply) => {
      const type = ASSETS[req.params.file];
      const body = type ? files.get(req.params.file) : undefined;
      if (!type || !body)
        return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such console asset' } });
      return reply.type(type).header('cache-control', 'no-cache').send(body.toString('utf8'));
    },
  );
};
