import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { L402Revocations } from '../../l402/revocations.js';
import { ErrorBody } from '../schemas.js';

const TokenId = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'the 32-byte token id, hex' });
const Reason = Type.String({ minLength: 1, maxLength: 200 });
const RevocationBody = Type.Object(
  {
    tokenId: TokenId,
    revokedAt: Type.Integer({ description: 'unix milliseconds' }),
    reason: Type.Optional(Reason),
    expiresAt: Type.Optional(
      Type.Integer({
        description:
          'when the credential expires (unix milliseconds), when known: the revocation is dropped then',
      }),
    ),
  },
  { additionalProperties: false },
);
const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

/** The operator's L402 credential management: revoke (effective at once, persisted) and list. */
export const l402Routes: FastifyPluginAsyncTypebox<{ revocations: L402Revocations }> = async (
  app,
  { revocations },
) => {
  const tags = ['l402'];
  app.post(
    '/v1/l402/credentials/revoke',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        description:
          'Revokes an L402 credential by its token id, or by the credential itself ' +
          '(`L402 <macaroon>:<preimage>` or the macaroon in base64). The proxy refuses it from this ' +
          'moment on (a fresh 402 challenge); revoking again answers the first revocation.',
        body: Type.Union([
          Type.Object({ tokenId: TokenId, reason: Type.Optional(Reason) }, { additionalProperties: false }),
          Type.Object(
            { credential: Type.String({ minLength: 1, maxLength: 8192 }), reason: Type.Optional(Reason) },
            { additionalProperties: false },
          ),
        ]),
        response: { 200: RevocationBody, ...errors },
      },
    },
    async (req) => {
      const { reason, ...target } = req.body;
      return revocations.revoke(target, reason);
    },
  );

  app.get(
    '/v1/l402/credentials/revoked',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        description: 'Revoked credentials in token id order; pass `next` as `after` for the following page.',
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
            after: Type.Optional(TokenId),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            { revocations: Type.Array(RevocationBody), next: Type.Optional(TokenId) },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) =>
      revocations.list({
        limit: req.query.limit ?? 100,
        ...(req.query.after !== undefined ? { after: req.query.after } : {}),
      }),
  );
};
