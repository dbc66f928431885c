import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { msat } from '../../domain/msat.js';
import type { AuctionViewer, TaskAuctions } from '../../market/auctions.js';
import type { FastifyRequest } from 'fastify';
import { principalOf } from '../auth.js';
import { jsonSafe } from '../json.js';
import { ErrorResponses, IdempotencyKey, IdParams, literals, MsatString, PageQuery } from '../schemas.js';

const errors = ErrorResponses;
const tags = ['market'];
const Seconds = Type.Integer({ minimum: 1, maximum: 366 * 86_400 });
const Weights = Type.Object(
  {
    price: Type.Integer({ minimum: 0, maximum: 1000 }),
    time: Type.Integer({ minimum: 0, maximum: 1000 }),
    reputation: Type.Integer({ minimum: 0, maximum: 1000 }),
  },
  { additionalProperties: false },
);
const Reputation = Type.Object(
  {
    accountId: Type.String(),
    completed: Type.Integer(),
    disputed: Type.Integer(),
    lost: Type.Integer(),
    late: Type.Integer(),
  },
  { additionalProperties: false },
);
const Bid = Type.Object(
  { accountId: Type.String(), priceMsat: MsatString, promisedSeconds: Type.Integer(), at: Type.Integer() },
  { additionalProperties: false },
);
const AuctionBody = Type.Object(
  {
    id: Type.String(),
    publisherAccountId: Type.String(),
    title: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    maxRewardMsat: MsatString,
    maxPromisedSeconds: Type.Integer(),
    reviewSeconds: Type.Integer(),
    bidDeadline: Type.Integer(),
    selection: literals(['auto', 'manual']),
    weights: Weights,
    bids: Type.Array(Bid),
    state: literals(['open', 'awarding', 'awarded', 'expired', 'failed']),
    winnerAccountId: Type.Optional(Type.String()),
    taskId: Type.Optional(Type.String()),
    failCode: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
    closedAt: Type.Optional(Type.Integer()),
  },
  { $id: 'Auction', additionalProperties: false },
);
const AuctionParams = Type.Object({
  id: IdParams.properties.id,
  auctionId: Type.String({ pattern: '^[0-9a-f-]{36}$' }),
});

/** Who calls: the operator (any `:id`), else the account of the key (`:id`, checked by the auth hook). */
const callerOf = (req: FastifyRequest, accountId: string): AuctionViewer =>
  principalOf(req).type === 'operator' ? { kind: 'operator' } : { kind: 'account', id: accountId };

/** Reverse auctions of tasks: open, bid, rank, award (the task is escrowed at the winning bid). */
export const auctionRoutes: FastifyPluginAsyncTypebox<{ auctions: TaskAuctions }> = async (
  app,
  { auctions },
) => {
  app.post(
    '/v1/accounts/:id/auctions',
    {
      config: { scope: 'pay' },
      schema: {
        tags,
        description:
          'Opens a task for bids. The winner (the buyer picks, or the best score at the deadline) gets the task with its bid as the escrowed reward.',
        params: IdParams,
        body: Type.Object(
          {
            title: Type.String({ minLength: 1, maxLength: 200 }),
            description: Type.Optional(Type.String({ maxLength: 16_384 })),
            capabilities: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
            maxRewardMsat: MsatString,
            bidSeconds: Seconds,
            maxPromisedSeconds: Seconds,
            reviewSeconds: Type.Optional(Seconds),
            selection: Type.Optional(literals(['auto', 'manual'])),
            weights: Type.Optional(Weights),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: { 201: AuctionBody, ...errors },
      },
    },
    async (req, reply) => {
      const { idempotencyKey, maxRewardMsat, ...rest } = req.body;
      const a = await auctions.open(
        req.params.id,
        { ...rest, maxRewardMsat: msat(maxRewardMsat) },
        idempotencyKey,
      );
      return reply.code(201).send(jsonSafe(a));
    },
  );

  app.get(
    '/v1/accounts/:id/auctions',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        description:
          '`open=true`: the open auctions (with `capability`, those these capabilities can bid on); otherwise the auctions the account published or won, newest first, a page at a time.',
        params: IdParams,
        querystring: Type.Object(
          {
            ...PageQuery.properties,
            open: Type.Optional(Type.Boolean()),
            capability: Type.Optional(
              Type.String({ maxLength: 1000, description: 'comma-separated capabilities, all required' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            { auctions: Type.Array(AuctionBody), next: Type.Optional(Type.String()) },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => {
      if (req.query.open) {
        const caps = req.query.capability?.split(',').filter((c) => c.length > 0);
        return { auctions: jsonSafe(auctions.listOpen(callerOf(req, req.params.id), caps)) };
      }
      const page = {
        ...(req.query.limit !== undefined ? { limit: req.query.limit } : {}),
        ...(req.query.before !== undefined ? { before: req.query.before } : {}),
      };
      return jsonSafe(await auctions.list(req.params.id, callerOf(req, req.params.id), page));
    },
  );

  app.get(
    '/v1/accounts/:id/auctions/:auctionId',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        description:
          'The auction, and its bids ranked by score (lower wins) with the bidders’ reputations. The publisher and the operator see every bid; a bidder only its own (and the task if it won); another account an open auction without bids, a closed one not at all (404).',
        params: AuctionParams,
        response: {
          200: Type.Object(
            {
              auction: AuctionBody,
              ranking: Type.Array(
                Type.Object(
                  {
                    accountId: Type.String(),
                    priceMsat: MsatString,
                    promisedSeconds: Type.Integer(),
                    at: Type.Integer(),
                    score: Type.Integer(),
                    reputation: Reputation,
                  },
                  { additionalProperties: false },
                ),
              ),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => {
      const a = await auctions.show(req.params.auctionId, callerOf(req, req.params.id));
      return { auction: jsonSafe(a), ranking: jsonSafe(await auctions.ranking(a)) };
    },
  );

  app.post(
    '/v1/accounts/:id/auctions/:auctionId/bids',
    {
      config: { scope: 'invoice' },
      schema: {
        tags,
        description:
          'A provider with the capabilities bids a price and a promised time (a new bid replaces its last).',
        params: AuctionParams,
        body: Type.Object(
          { priceMsat: MsatString, promisedSeconds: Seconds },
          { additionalProperties: false },
        ),
        response: { 200: AuctionBody, ...errors },
      },
    },
    async (req) =>
      jsonSafe(
        await auctions.bid(
          req.params.auctionId,
          req.params.id,
          msat(req.body.priceMsat),
          req.body.promisedSeconds,
        ),
      ),
  );

  app.post(
    '/v1/accounts/:id/auctions/:auctionId/award',
    {
      config: { scope: 'pay' },
      schema: {
        tags,
        description: 'The publisher awards: to `bidderAccountId`, or without it to the best score.',
        params: AuctionParams,
        body: Type.Object(
          { bidderAccountId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })) },
          { additionalProperties: false },
        ),
        response: { 200: AuctionBody, ...errors },
      },
    },
    async (req) => {
      return jsonSafe(
        await auctions.award(req.params.auctionId, callerOf(req, req.params.id), req.body.bidderAccountId),
      );
    },
  );
};
