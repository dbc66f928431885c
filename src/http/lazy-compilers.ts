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
export function lazyCompilers(): CompilersFactory {
  const validators = AjvCompiler();
  const serializers = SerializerSelector();
  const buildValidator: BuildValidator = (externalSchemas, options) => {
    let compiler: ReturnType<BuildValidator> | undefined;
    return (route: RouteDef) => {
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
