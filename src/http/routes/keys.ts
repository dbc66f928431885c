import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { SCOPES } from '../../auth/api-keys.js';
import { principalOf } from '../auth.js';
import { ErrorResponses, IdParams } from '../schemas.js';
import type { AccountServices } from './services.js';

const Scope = Type.Union(SCOPES.map((s) => Type.Literal(s)));
const KeyView = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    scopes: Type.Array(Type.String()),
    createdAt: Type.Integer(),
    expiresAt: Type.Optional(Type.Integer()),
    revokedAt: Type.Optional(Type.Integer()),
    createdBy: Type.String(),
  },
  { additionalProperties: false },
);
const errors = ErrorResponses;

/** API keys of an account: the operator or an admin key of the account manages them. */
export const keyRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  const strip = <T extends { hash: string }>(k: T): Omit<T, 'hash'> => {
    const copy: Partial<T> = { ...k };
    delete copy.hash;
    return copy as Omit<T, 'hash'>;
  };

  app.post(
    '/v1/accounts/:id/keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['keys'],
        description: 'The key is returned once; only its hash is stored.',
        params: IdParams,
        body: Type.Object(
          {
            scopes: Type.Array(Scope, { minItems: 1, maxItems: 4 }),
            expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 * 365 * 86400 })),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ key: Type.String(), record: KeyView }, { additionalProperties: false }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      await s.ledger.requireAccount(req.params.id);
      const expiresAt =
        req.body.expiresInSeconds !== undefined ? Date.now() + req.body.expiresInSeconds * 1000 : undefined;
      const { key, record } = await s.apiKeys.create(
        principalOf(req),
        req.params.id,
        req.body.scopes,
        expiresAt,
      );
      return reply.code(201).send({ key, record: strip(record) });
    },
  );

  app.get(
    '/v1/accounts/:id/keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['keys'],
        params: IdParams,
        response: {
          200: Type.Object({ keys: Type.Array(KeyView) }, { additionalProperties: false }),
          ...errors,
        },
      },
    },
    async (req) => ({ keys: (await s.apiKeys.list(req.params.id)).map(strip) }),
  );

  app.delete(
    '/v1/accounts/:id/keys/:keyId',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['keys'],
        params: Type.Object({
          id: IdParams.properties.id,
          keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }),
        }),
        response: { 200: KeyView, ...errors },
      },
    },
    async (req) => strip(await s.apiKeys.revoke(req.params.id, req.params.keyId)),
  );
};
