import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { CoulombApp } from '../../src/http/app.js';

/**
 * Checks every JSON answer of the app against the response schema its route declares, before
 * serialization (fast-json-stringify would silently drop a field the schema does not declare):
 * a missing schema, an undeclared field or a wrong type is recorded in the returned list.
 */
export function checkResponses(app: CoulombApp): string[] {
  const problems: string[] = [];
  app.addHook('preSerialization', async (req, reply, payload) => {
    if (req.routeOptions.url?.startsWith('/docs')) return payload; // the OpenAPI plugin's own routes
    const schemas = req.routeOptions.schema?.response as Record<string, TSchema> | undefined;
    const code = String(reply.statusCode);
    const schema = schemas?.[code] ?? schemas?.[`${code[0]}xx`];
    const where = `${req.method} ${req.routeOptions.url ?? req.url} ${code}`;
    if (!schema) problems.push(`${where}: no response schema`);
    else if (!Value.Check(schema, payload))
      problems.push(
        `${where}: ${[...Value.Errors(schema, payload)].map((e) => `${e.path} ${e.message}`).join('; ')}`,
      );
    return payload;
  });
  return problems;
}
