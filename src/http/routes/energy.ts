import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { msat } from '../../domain/msat.js';
import { EnergyError, EnergyErrorCode } from '../../energy/errors.js';
import type { EnergyMarket } from '../../energy/market.js';
import { jsonSafe } from '../json.js';
import {
  CountString,
  ErrorResponses,
  IdempotencyKey,
  IdParams,
  literals,
  MsatString,
  PageQuery,
} from '../schemas.js';

const errors = ErrorResponses;
const tags = ['energy'];
const Zone = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'grid zone' });
const Time = Type.Integer({ minimum: 0, description: 'ms since the epoch, a multiple of the slot' });
const Uuid = Type.String({ pattern: '^[0-9a-f-]{36}$' });
const Side = literals(['offer', 'bid']);

const OrderBody = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    side: Side,
    zone: Type.String(),
    windowStart: Type.Integer(),
    windowEnd: Type.Integer(),
    priceMsatPerKWh: MsatString,
    quantityWh: CountString,
    filledWh: CountString,
    meterDeviceId: Type.Optional(Type.String()),
    state: literals(['open', 'filled', 'canceled', 'expired']),
    seq: Type.Integer(),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
  },
  { $id: 'EnergyOrder', additionalProperties: false },
);
const Reading = Type.Object({ interval: Type.Integer(), wh: CountString }, { additionalProperties: false });
const TradeBody = Type.Object(
  {
    id: Type.String(),
    zone: Type.String(),
    windowStart: Type.Integer(),
    windowEnd: Type.Integer(),
    offerId: Type.String(),
    bidId: Type.String(),
    producerAccountId: Type.String(),
    consumerAccountId: Type.String(),
    consumerMeterId: Type.Optional(Type.String()),
    takerSide: Side,
    priceMsatPerKWh: MsatString,
    quantityWh: CountString,
    state: literals(['matched', 'delivering', 'completed', 'lapsed', 'disputed', 'stopped', 'unfunded']),
    producedWh: CountString,
    consumedWh: CountString,
    settledWh: CountString,
    billedMsat: MsatString,
    paidMsat: MsatString,
    streamId: Type.Optional(Type.String()),
    producerInterval: Type.Integer(),
    consumerInterval: Type.Integer(),
    pendingProducer: Type.Array(Reading),
    pendingConsumer: Type.Array(Reading),
    closeCode: Type.Optional(Type.String()),
    closeMessage: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
  },
  { $id: 'EnergyTrade', additionalProperties: false },
);
const Level = Type.Object(
  { price: MsatString, quantity: CountString, orders: Type.Integer() },
  { additionalProperties: false },
);
const Next = Type.Optional(Type.String({ description: 'the cursor of the next page: pass it as `before`' }));
const OrderParams = Type.Object({ id: IdParams.properties.id, orderId: Uuid });
const TradeParams = Type.Object({ id: IdParams.properties.id, tradeId: Uuid });

/** The energy market: public order books and tape; orders, trades and meter readings of an account. */
export const energyRoutes: FastifyPluginAsyncTypebox<{ energy: EnergyMarket }> = async (app, { energy }) => {
  app.get(
    '/v1/energy/book',
    {
      config: { public: true },
      schema: {
        tags,
        description:
          'The order book of a product (zone and delivery window): levels best first, last prices.',
        querystring: Type.Object(
          {
            zone: Type.Optional(Zone),
            windowStart: Time,
            windowEnd: Time,
            depth: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 20 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            {
              zone: Type.String(),
              windowStart: Type.Integer(),
              windowEnd: Type.Integer(),
              bids: Type.Array(Level),
              offers: Type.Array(Level),
              lastPriceMsatPerKWh: Type.Optional(MsatString),
              lastTradeAt: Type.Optional(Type.Integer()),
              zoneLastPriceMsatPerKWh: Type.Optional(MsatString),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) =>
      jsonSafe(
        await energy.book(
          {
            zone: req.query.zone ?? 'default',
            windowStart: req.query.windowStart,
            windowEnd: req.query.windowEnd,
          },
          req.query.depth,
        ),
      ),
  );

  app.get(
    '/v1/energy/trades',
    {
      config: { public: true },
      schema: {
        tags,
        description:
          'The public tape: every trade (price, quantity, product, time; no accounts), newest first.',
        querystring: PageQuery,
        response: {
          200: Type.Object(
            {
              trades: Type.Array(
                Type.Object(
                  {
                    id: Type.String(),
                    zone: Type.String(),
                    windowStart: Type.Integer(),
                    windowEnd: Type.Integer(),
                    priceMsatPerKWh: MsatString,
                    quantityWh: CountString,
                    takerSide: Side,
                    createdAt: Type.Integer(),
                  },
                  { additionalProperties: false },
                ),
              ),
              next: Next,
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => jsonSafe(await energy.tape(req.query)),
  );

  app.post(
    '/v1/accounts/:id/energy/orders',
    {
      config: { scope: 'pay' },
      schema: {
        tags,
        description:
          'An offer (sell) or a bid (buy): matched at once by price-time priority (partial fills at the resting prices); the rest rests.',
        params: IdParams,
        body: Type.Object(
          {
            side: Side,
            zone: Type.Optional(Zone),
            windowStart: Time,
            windowEnd: Time,
            priceMsatPerKWh: MsatString,
            quantityWh: CountString,
            meterDeviceId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object(
            { order: OrderBody, trades: Type.Array(TradeBody) },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const out = await energy.submit(
        req.params.id,
        {
          side: b.side,
          zone: b.zone ?? 'default',
          windowStart: b.windowStart,
          windowEnd: b.windowEnd,
          priceMsatPerKWh: msat(b.priceMsatPerKWh),
          quantityWh: BigInt(b.quantityWh),
          ...(b.meterDeviceId !== undefined ? { meterDeviceId: b.meterDeviceId } : {}),
        },
        b.idempotencyKey,
      );
      return reply.code(201).send(jsonSafe(out));
    },
  );

  app.get(
    '/v1/accounts/:id/energy/orders',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        params: IdParams,
        querystring: PageQuery,
        response: {
          200: Type.Object({ orders: Type.Array(OrderBody), next: Next }, { additionalProperties: false }),
          ...errors,
        },
      },
    },
    async (req) => jsonSafe(await energy.listOrders(req.params.id, req.query)),
  );

  app.post(
    '/v1/accounts/:id/energy/orders/:orderId/cancel',
    {
      config: { scope: 'pay' },
      schema: { tags, params: OrderParams, response: { 200: OrderBody, ...errors } },
    },
    async (req) => jsonSafe(await energy.cancel(req.params.id, req.params.orderId)),
  );

  app.get(
    '/v1/accounts/:id/energy/trades',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        params: IdParams,
        querystring: PageQuery,
        response: {
          200: Type.Object({ trades: Type.Array(TradeBody), next: Next }, { additionalProperties: false }),
          ...errors,
        },
      },
    },
    async (req) => jsonSafe(await energy.listTrades(req.params.id, req.query)),
  );

  const party = async (accountId: string, tradeId: string) => {
    const t = await energy.getTrade(tradeId);
    if (t.producerAccountId !== accountId && t.consumerAccountId !== accountId)
      throw new EnergyError(EnergyErrorCode.TRADE_NOT_FOUND, `no trade ${tradeId}`);
    return t;
  };

  app.get(
    '/v1/accounts/:id/energy/trades/:tradeId',
    {
      config: { scope: 'read' },
      schema: { tags, params: TradeParams, response: { 200: TradeBody, ...errors } },
    },
    async (req) => jsonSafe(await party(req.params.id, req.params.tradeId)),
  );

  app.post(
    '/v1/accounts/:id/energy/trades/:tradeId/readings',
    {
      config: { scope: 'invoice' },
      schema: {
        tags,
        description:
          "A meter reading of one interval of a trade, by the producer's account, or the consumer's when its bid named a meter.",
        params: TradeParams,
        body: Type.Object(
          { interval: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), wh: CountString },
          { additionalProperties: false },
        ),
        response: { 200: TradeBody, ...errors },
      },
    },
    async (req) => {
      const t = await party(req.params.id, req.params.tradeId);
      const who = t.producerAccountId === req.params.id ? 'producer' : 'consumer';
      return jsonSafe(await energy.report(t.id, who, req.body.interval, BigInt(req.body.wh)));
    },
  );

  app.post(
    '/v1/accounts/:id/energy/trades/:tradeId/stop',
    {
      config: { scope: 'pay' },
      schema: { tags, params: TradeParams, response: { 200: TradeBody, ...errors } },
    },
    async (req) => jsonSafe(await energy.stopTrade(req.params.id, req.params.tradeId)),
  );
};
