import type { FastifyInstance, FastifyRequest } from 'fastify';
import { hasScope, type ApiKeys, type Principal, type Scope } from '../auth/api-keys.js';
import type { OperatorAuth } from './operator-auth.js';
import { csrfProblem, sessionToken, type ConsoleSessions } from './console-session.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes are operator-only unless they say otherwise. */
    public?: boolean;
    /** Account keys with this scope may call the route for their own account (`:id`). */
    scope?: Scope;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

function bearer(header: string | undefined): string | undefined {
  const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return m?.[1];
}

const unauthorized = { error: { code: 'UNAUTHORIZED', message: 'missing or invalid credentials' } };
const forbidden = (message: string) => ({ error: { code: 'FORBIDDEN', message } });

/**
 * Protected by default: a route is operator-only unless it is marked public, or names the scope
 * an account key needs (then only for the account in its `:id` parameter).
 */
export function installAuth(
  app: FastifyInstance,
  operator: OperatorAuth,
  keys?: ApiKeys,
  /** The console's sessions: a session cookie stands for the operator (with CSRF checks). */
  sessions?: ConsoleSessions,
): void {
  app.addHook('onRequest', async (req, reply) => {
    const config = req.routeOptions.config;
    if (config.public === true || req.routeOptions.url === undefined) return;
    const token = bearer(req.headers.authorization);
    const session = token === undefined ? await sessions?.find(sessionToken(req)) : undefined;
    if (session) {
      const problem = csrfProblem(req, session);
      if (problem) return reply.code(403).send({ error: { code: 'CSRF_REJECTED', message: problem } });
      req.principal = { type: 'operator' };
      return;
    }
    if (token && keys && token.startsWith('ck_')) {
      const key = await keys.verify(token);
      if (!key) return reply.code(401).send(unauthorized);
      req.principal = { type: 'key', key };
    } else if (operator.verify(token)) {
      req.principal = { type: 'operator' };
      return;
    } else {
      return reply.code(401).send(unauthorized);
    }
    const needed = config.scope;
    if (!needed) return reply.code(403).send(forbidden('this route is for the operator'));
    const accountId = (req.params as { id?: string }).id;
    if (accountId !== req.principal.key.accountId)
      return reply.code(403).send(forbidden('this key belongs to another account'));
    if (!hasScope(req.principal.key.scopes, needed))
      return reply.code(403).send(forbidden(`this key lacks the ${needed} scope`));
  });
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error('route reached without a principal');
  return req.principal;
}

export function actorOf(req: FastifyRequest): string {
  const p = principalOf(req);
  return p.type === 'operator' ? 'operator' : `key:${p.key.id}`;
}
