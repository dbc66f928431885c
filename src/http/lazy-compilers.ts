import AjvCompiler from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
>;
type BuildValidator = ReturnType<typeof AjvCompiler>;
type BuildSerializer = ReturnType<typeof SerializerSelector>;
/** What fastify calls a compiler with: the route's schema definition (typed loosely upstream). */
type RouteDef = Parameters<ReturnType<BuildValidator>>[0];
type Validator = ReturnType<ReturnType<BuildValidator>>;
type SerializerRoute = Parameters<ReturnType<BuildSerializer>>[0];
type Serializer = ReturnType<ReturnType<BuildSerializer>>;

/**
 * Fastify's own schema compilers (ajv for validation, fast-json-stringify for responses), but
 * each route's validator and serializer is compiled the first time it is used instead of when the
 * route is registered: compiling every schema of every route up front cost about a second of CPU
 * at each start, for routes most processes never serve. Same compilers, same options, same
 * results; a schema that does not compile fails at its first use instead of at start (every route
 * schema is exercised by the test suite and the API fuzz).
 */
/** What fastify really passes a validator compiler (its types name only the schema). */
interface RouteSchemaDef {
  schema: unknown;
  httpPart?: string;
  method?: string;
  url?: string;
}

const HEADER_SCHEMA_KEYS = new Set(['type', 'properties', 'required', 'additionalProperties', 'description']);

/**
 * Header names are case-insensitive and arrive lower-cased: fastify lower-cases a header schema's
 * property names and `required` before compiling — but only with its own compiler, so this does
 * it here. Shapes beyond properties/required (dependencies, pattern properties, refs) are refused
 * when the route is registered, rather than validated wrongly.
 */
function headersLowerCased(given: RouteDef): RouteDef {
  const route = given as unknown as RouteSchemaDef;
  const schema = route.schema;
  if (route.httpPart !== 'headers' || typeof schema !== 'object' || schema === null) return given;
  const s = schema as Record<string, unknown>;
  for (const key of Object.keys(s))
    if (!HEADER_SCHEMA_KEYS.has(key))
      throw new Error(
        `the header schema of ${route.method} ${route.url} uses "${key}": only properties and required`,
      );
  const lowered: Record<string, unknown> = { ...s };
  if (s['properties'] && typeof s['properties'] === 'object')
    lowered['properties'] = Object.fromEntries(
      Object.entries(s['properties']).map(([name, value]) => [name.toLowerCase(), value]),
    );
  if (Array.isArray(s['required']))
    lowered['required'] = s['required'].map((name) => String(name).toLowerCase());
  return { ...route, schema: lowered } as unknown as RouteDef;
}

export function lazyCompilers(): CompilersFactory {
  const validators = AjvCompiler();
  const serializers = SerializerSelector();
  const buildValidator: BuildValidator = (externalSchemas, options) => {
    let compiler: ReturnType<BuildValidator> | undefined;
    return (given: RouteDef) => {
      const route = headersLowerCased(given);
      let compiled: Validator | undefined;
      const get = (): Validator => (compiled ??= (compiler ??= validators(externalSchemas, options))(route));
      const lazy = ((data: unknown) => (get() as (d: unknown) => unknown)(data)) as unknown as Validator;
      // Fastify reads a failed validation's `errors` from the function itself.
      Object.defineProperty(lazy, 'errors', { get: () => (get() as { errors?: unknown }).errors });
      return lazy;
    };
  };
  const buildSerializer: BuildSerializer = (externalSchemas, options) => {
    let compiler: ReturnType<BuildSerializer> | undefined;
    return (route: SerializerRoute) => {
      let compiled: Serializer | undefined;
      return (data: unknown) =>
        (compiled ??= (compiler ??= serializers(externalSchemas, options))(route))(data);
    };
  };
  return { buildValidator, buildSerializer };
}
