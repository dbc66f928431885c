import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { msat } from '../../domain/msat.js';
import type { EscrowService } from '../../escrow/service.js';
import type { Actor, Escrow } from '../../escrow/types.js';
import { principalOf } from '../auth.js';
import { jsonSafe } from '../json.js';
import {
  ErrorBody,
  ErrorResponses,
  Hash,
  IdempotencyKey,
  IdParams,
  literals,
  MsatString,
  PageQuery,
} from '../schemas.js';

const errors = { ...ErrorResponses, 422: ErrorBody, 424: ErrorBody };
const EscrowParams = Type.Object({ id: IdParams.properties.id, escrowId: Type.String({ maxLength: 64 }) });
const XOnlyKey = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'BIP340 x-only public key' });

const Condition = Type.Union([
  Type.Object({ type: Type.Literal('approval') }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('preimage'), paymentHash: Hash }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('receipt') }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('webhook'),
      url: Type.String({
        maxLength: 2048,
        pattern: '^https?://',
        description:
          'the verifier: a public http(s) address (or one the operator allows), no credentials; redirects are not followed',
      }),
      timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000 }),
    },
    { additionalProperties: false },
  ),
]);

/** An escrow as its parties see it (src/escrow/types.ts `Escrow`, never the preimage). */
const EscrowBody = Type.Object(
  {
    id: Type.String(),
    payerAccountId: Type.String(),
    payeeAccountId: Type.Optional(Type.String()),
    amountMsat: MsatString,
    description: Type.String(),
    condition: Condition,
    funding: literals(['lightning', 'account']),
    state: literals(['open', 'funded', 'releasing', 'released', 'refunding', 'refunded', 'expired']),
    paymentHash: Hash,
    request: Type.Optional(Type.String({ description: 'the hold invoice the payer pays from outside' })),
    cltvDelta: Type.Integer(),
    htlcExpiryHeight: Type.Optional(Type.Integer()),
    deadline: Type.Integer({ description: 'ms since the epoch' }),
    lockTransferId: Type.Optional(Type.String()),
    payoutRequest: Type.Optional(Type.String()),
    payoutPaymentId: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    verifierError: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
    fundedAt: Type.Optional(Type.Integer()),
    resolvedAt: Type.Optional(Type.Integer()),
  },
  { $id: 'Escrow', additionalProperties: false },
);
const EscrowPage = Type.Object(
  {
    escrows: Type.Array(EscrowBody),
    next: Type.Optional(Type.String({ description: 'the cursor of the next page: pass it as `before`' })),
  },
  { additionalProperties: false },
);
const PubkeyList = Type.Object({ pubkeys: Type.Array(XOnlyKey) }, { additionalProperties: false });

/** The account acting through its key, or the operator. */
export function actor(req: FastifyRequest): Actor {
  const p = principalOf(req);
  return p.type === 'operator'
    ? { type: 'operator' }
    : { type: 'account', accountId: (req.params as { id: string }).id };
}

/** Conditional payments: create, fund, prove, release, refund; receipt keys of payees. */
export const escrowRoutes: FastifyPluginAsyncTypebox<{ escrow: EscrowService }> = async (app, { escrow }) => {
  const tags = ['escrow'];
  app.post(
    '/v1/accounts/:id/escrows',
    {
      config: { scope: 'pay' },
      schema: {
        tags,
        params: IdParams,
        body: Type.Object(
          {
            payeeAccountId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
            amountMsat: MsatString,
            description: Type.Optional(Type.String({ maxLength: 600 })),
            condition: Condition,
            funding: Type.Optional(Type.Union([Type.Literal('lightning'), Type.Literal('account')])),
            timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 90 * 86400 })),
            cltvDelta: Type.Optional(Type.Integer()),
            payoutRequest: Type.Optional(Type.String({ minLength: 10, maxLength: 8000 })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: { 201: EscrowBody, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const e = await escrow.create(req.params.id, {
        amountMsat: msat(b.amountMsat),
        condition: b.condition,
        ...(b.payeeAccountId !== undefined ? { payeeAccountId: b.payeeAccountId } : {}),
        ...(b.description !== undefined ? { description: b.description } : {}),
        ...(b.funding !== undefined ? { funding: b.funding } : {}),
        ...(b.timeoutSeconds !== undefined ? { timeoutSeconds: b.timeoutSeconds } : {}),
        ...(b.cltvDelta !== undefined ? { cltvDelta: b.cltvDelta } : {}),
        ...(b.payoutRequest !== undefined ? { payoutRequest: b.payoutRequest } : {}),
        ...(b.idempotencyKey !== undefined ? { idempotencyKey: b.idempotencyKey } : {}),
      });
      return reply.code(201).send(jsonSafe(e));
    },
  );

  app.get(
    '/v1/accounts/:id/escrows',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        params: IdParams,
        querystring: PageQuery,
        response: { 200: EscrowPage, ...errors },
      },
    },
    async (req) => jsonSafe(await escrow.list(req.params.id, req.query)),
  );

  app.get(
    '/v1/accounts/:id/escrows/:escrowId',
    {
      config: { scope: 'read' },
      schema: { tags, params: EscrowParams, response: { 200: EscrowBody, ...errors } },
    },
    async (req) => jsonSafe(await escrow.get(req.params.escrowId, actor(req))),
  );

  const action = (
    path: string,
    scope: 'pay' | 'invoice',
    body: Parameters<typeof Type.Object>[0],
    run: (escrowId: string, who: Actor, body: Record<string, unknown>) => Promise<Escrow>,
  ): void => {
    app.post(
      `/v1/accounts/:id/escrows/:escrowId/${path}`,
      {
        config: { scope },
        schema: {
          tags,
          params: EscrowParams,
          body: Type.Object(body, { additionalProperties: false }),
          response: { 200: EscrowBody, ...errors },
        },
      },
      async (req) => {
        const who = actor(req);
        await escrow.get(req.params.escrowId, who); // not a party: 404
        return jsonSafe(await run(req.params.escrowId, who, (req.body ?? {}) as Record<string, unknown>));
      },
    );
  };
  action('fund', 'pay', {}, (id, who) => escrow.fundFromAccount(id, who));
  action('approve', 'pay', {}, (id, who) => escrow.approve(id, who));
  action('cancel', 'pay', { reason: Type.Optional(Type.String({ maxLength: 500 })) }, (id, who, b) =>
    escrow.cancel(id, who, typeof b['reason'] === 'string' ? b['reason'] : 'canceled'),
  );
  action('preimage', 'invoice', { preimage: Hash }, (id, who, b) =>
    escrow.submitPreimage(id, who, b['preimage'] as string),
  );
  action(
    'receipt',
    'invoice',
    { payload: Type.String({ maxLength: 1024 }), signature: Type.String({ pattern: '^[0-9a-f]{128}$' }) },
    (id, who, b) =>
      escrow.submitReceipt(id, who, { payload: b['payload'] as string, signature: b['signature'] as string }),
  );
  action('verify', 'invoice', { evidence: Type.Optional(Type.Unknown()) }, (id, who, b) =>
    escrow.verify(id, who, b['evidence'] ?? null),
  );

  app.post(
    '/v1/accounts/:id/receipt-keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        params: IdParams,
        body: Type.Object({ pubkey: XOnlyKey }, { additionalProperties: false }),
        response: { 201: PubkeyList, ...errors },
      },
    },
    async (req, reply) => {
      await escrow.registerReceiptKey(req.params.id, req.body.pubkey);
      return reply.code(201).send({ pubkeys: await escrow.listReceiptKeys(req.params.id) });
    },
  );
  app.get(
    '/v1/accounts/:id/receipt-keys',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        params: IdParams,
        response: { 200: PubkeyList, ...errors },
      },
    },
    async (req) => ({ pubkeys: await escrow.listReceiptKeys(req.params.id) }),
  );

  // The operator's hand: list everything, release or refund any escrow.
  app.get(
    '/v1/escrows',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        querystring: PageQuery,
        response: { 200: EscrowPage, ...errors },
      },
    },
    async (req) => jsonSafe(await escrow.list(undefined, req.query)),
  );
  for (const verb of ['release', 'refund'] as const) {
    app.post(
      `/v1/escrows/:escrowId/${verb}`,
      {
        schema: {
          tags,
          security: [{ operator: [] }],
          params: Type.Object({ escrowId: Type.String({ maxLength: 64 }) }),
          response: { 200: EscrowBody, ...errors },
        },
      },
      async (req) =>
        jsonSafe(
          verb === 'release'
            ? await escrow.releaseNow(req.params.escrowId, 'operator')
            : await escrow.refundNow(req.params.escrowId, 'operator'),
        ),
    );
  }
};
