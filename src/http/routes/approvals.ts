import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { actorOf } from '../auth.js';
import { jsonSafe } from '../json.js';
import { ApprovalBody, ErrorResponses, PaymentBody } from '../schemas.js';
import { paymentView } from './views.js';
import { RecordIndex } from '../../ledger/record-index.js';
import type { AccountServices } from './services.js';

const errors = ErrorResponses;

/** Payments held for an operator's decision; they expire by themselves. */
export const approvalRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  app.get(
    '/v1/approvals',
    {
      schema: {
        tags: ['approvals'],
        security: [{ operator: [] }],
        querystring: Type.Object({
          state: Type.Optional(
            Type.Union([
              Type.Literal('pending'),
              Type.Literal('approved'),
              Type.Literal('denied'),
              Type.Literal('expired'),
            ]),
          ),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
          cursor: Type.Optional(Type.String({ pattern: RecordIndex.CURSOR.source })),
        }),
        response: {
          200: Type.Object(
            {
              approvals: Type.Array(ApprovalBody),
              nextCursor: Type.Optional(
                Type.String({ description: 'the cursor of the next page: pass it as `cursor`' }),
              ),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => {
      const page = await s.payments.listApprovals({
        limit: req.query.limit ?? 100,
        ...(req.query.state !== undefined ? { state: req.query.state } : {}),
        ...(req.query.cursor !== undefined ? { cursor: req.query.cursor } : {}),
      });
      return {
        approvals: jsonSafe(page.approvals),
        ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
      };
    },
  );

  for (const action of ['approve', 'deny'] as const) {
    app.post(
      `/v1/approvals/:approvalId/${action}`,
      {
        schema: {
          tags: ['approvals'],
          security: [{ operator: [] }],
          params: Type.Object({ approvalId: Type.String({ maxLength: 128 }) }),
          response: { 200: PaymentBody, 202: PaymentBody, ...errors },
        },
      },
      async (req, reply) => {
        const p =
          action === 'approve'
            ? await s.payments.approve(req.params.approvalId, actorOf(req))
            : await s.payments.denyApproval(req.params.approvalId, actorOf(req));
        return reply.code(p.status === 'pending' ? 202 : 200).send(paymentView(p));
      },
    );
  }
};
