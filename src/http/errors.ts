import type { FastifyError, FastifyInstance } from 'fastify';
import { AppError } from '../domain/errors.js';
import { InvalidAmountError } from '../domain/msat.js';
import { MSAT_PATTERN } from './schemas.js';

/** A validation error on an msat field (ajv `verbose` gives each error the schema it broke). */
function isAmountError(fe: FastifyError): boolean {
  return (fe.validation ?? []).some(
    (v) => (v as { parentSchema?: { pattern?: unknown } }).parentSchema?.pattern === MSAT_PATTERN,
  );
}

/** Every error leaves as `{ error: { code, message } }`; client mistakes are 4xx, never 500. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError | Error, req, reply) => {
    if (err instanceof AppError) {
      if (err.status >= 500) req.log.error({ err }, 'request failed');
      return reply.code(err.status).send({ error: err.toJSON() });
    }
    if (err instanceof InvalidAmountError) {
      return reply.code(400).send({ error: { code: err.code, message: err.message } });
    }
    const fe = err as FastifyError;
    if (fe.validation) {
      // An amount sent as a number, array, null... is refused (never rounded or coerced) with its own code.
      if (isAmountError(fe))
        return reply.code(400).send({
          error: { code: 'INVALID_AMOUNT', message: `${fe.message} (msat amounts are decimal strings)` },
        });
      return reply.code(400).send({ error: { code: 'VALIDATION_FAILED', message: fe.message } });
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply
        .code(fe.statusCode)
        .send({ error: { code: fe.code ?? 'BAD_REQUEST', message: fe.message } });
    }
    req.log.error({ err }, 'unexpected error');
    return reply.code(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });
}
