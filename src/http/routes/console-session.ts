import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ConsoleSessions, csrfProblem, sessionCookie, sessionToken } from '../console-session.js';
import type { OperatorAuth } from '../operator-auth.js';
import { ErrorBody } from '../schemas.js';

const SessionBody = Type.Object(
  {
    csrfToken: Type.String({ description: 'send it as x-csrf-token with every state-changing request' }),
    expiresAt: Type.Integer({ description: 'unix ms' }),
  },
  { additionalProperties: false },
);
const tags = ['console'];
const unauthorized = { error: { code: 'UNAUTHORIZED', message: 'missing or invalid credentials' } };

/**
 * The console's login: the operator key, given once in a POST body (never in a URL), becomes an
 * HttpOnly, SameSite=Strict session cookie (Secure over TLS) that the API then accepts as the
 * operator, with the session's CSRF token on state-changing requests.
 */
export const consoleSessionRoutes: FastifyPluginAsyncTypebox<{
  sessions: ConsoleSessions;
  operator: OperatorAuth;
}> = async (app, { sessions, operator }) => {
  app.post(
    '/console/api/login',
    {
      config: { public: true },
      schema: {
        tags,
        description:
          'Exchanges the operator key for a session cookie (8 hours). At most 10 attempts a minute per source address (429 LOGIN_RATE_LIMITED).',
        body: Type.Object(
          { key: Type.String({ minLength: 1, maxLength: 512 }) },
          { additionalProperties: false },
        ),
        response: { 200: SessionBody, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody },
      },
    },
    async (req, reply) => {
      const wait = sessions.loginAttempt(req.ip);
      if (wait > 0)
        return reply
          .code(429)
          .header('retry-after', String(Math.ceil(wait / 1000)))
          .send({
            error: { code: 'LOGIN_RATE_LIMITED', message: 'too many login attempts from this address' },
          });
      if (!operator.verify(req.body.key)) return reply.code(401).send(unauthorized);
      await sessions.end(sessionToken(req));
      const s = await sessions.create();
      void reply.header('set-cookie', sessionCookie(s.token, s.maxAgeSeconds, req.protocol === 'https'));
      void reply.header('cache-control', 'no-store');
      return { csrfToken: s.csrf, expiresAt: s.expiresAt };
    },
  );

  app.get(
    '/console/api/session',
    {
      config: { public: true },
      schema: {
        tags,
        description: "The current session's CSRF token and expiry (401 when not logged in).",
        response: { 200: SessionBody, 401: ErrorBody },
      },
    },
    async (req, reply) => {
      const s = await sessions.find(sessionToken(req));
      if (!s) return reply.code(401).send(unauthorized);
      void reply.header('cache-control', 'no-store');
      return { csrfToken: s.csrf, expiresAt: s.expiresAt };
    },
  );

  app.post(
    '/console/api/logout',
    {
      config: { public: true },
      schema: {
        tags,
        description: 'Ends the session (with its CSRF token) and clears the cookie.',
        response: {
          200: Type.Object({ loggedOut: Type.Boolean() }, { additionalProperties: false }),
          401: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const token = sessionToken(req);
      const s = await sessions.find(token);
      if (!s) return reply.code(401).send(unauthorized);
      const problem = csrfProblem(req, s);
      if (problem) return reply.code(403).send({ error: { code: 'CSRF_REJECTED', message: problem } });
      await sessions.end(token);
      void reply.header('set-cookie', sessionCookie('', 0, req.protocol === 'https'));
      return { loggedOut: true };
    },
  );
};
