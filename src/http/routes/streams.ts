import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../domain/errors.js';
import { msat } from '../../domain/msat.js';
import {
  StreamError,
  StreamErrorCode,
  type StreamReceiver,
  type StreamsService,
} from '../../streams/index.js';
import type { PublicStream } from '../../streams/index.js';
import { principalOf } from '../auth.js';
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
const StreamParams = Type.Object({ id: IdParams.properties.id, streamId: Type.String({ maxLength: 64 }) });
const Pubkey = Type.String({ pattern: '^0[23][0-9a-f]{64}$' });
const Payee = Type.Union([
  Type.Object({ accountId: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
  Type.Object(
    { nodePubkey: Pubkey, recipientId: Type.Optional(Type.String({ maxLength: 64 })) },
    { additionalProperties: false },
  ),
]);

/** A stream as its parties see it (src/streams/types.ts `PublicStream`). */
const StreamBody = Type.Object(
  {
    id: Type.String(),
    payerAccountId: Type.String(),
    payee: Payee,
    payeeAccountId: Type.Optional(Type.String()),
    mode: Type.Union([Type.Literal('local'), Type.Literal('remote')]),
    kind: Type.Union([Type.Literal('time'), Type.Literal('metered')]),
    rateMsat: Type.Optional(MsatString),
    perSeconds: Type.Optional(Type.Integer()),
    priceMsatPerUnit: Type.Optional(MsatString),
    units: Type.Optional(CountString),
    maxTotalMsat: Type.Optional(MsatString),
    maxDurationSeconds: Type.Optional(Type.Integer()),
    intervalSeconds: Type.Optional(Type.Integer()),
    minPaymentMsat: Type.Optional(MsatString),
    payments: Type.Optional(Type.Integer()),
    prefundMsat: Type.Optional(MsatString),
    memo: Type.Optional(Type.String()),
    state: Type.Union([Type.Literal('active'), Type.Literal('paused'), Type.Literal('stopped')]),
    stopReason: Type.Optional(
      literals(['requested', 'cap_reached', 'funds_exhausted', 'policy_denied', 'payment_failed']),
    ),
    stopCode: Type.Optional(Type.String()),
    stopMessage: Type.Optional(Type.String()),
    activeSeconds: Type.Integer(),
    accruedMsat: MsatString,
    paidMsat: MsatString,
    owedMsat: MsatString,
    createdAt: Type.Integer(),
    updatedAt: Type.Integer(),
    stoppedAt: Type.Optional(Type.Integer()),
  },
  { $id: 'Stream', additionalProperties: false },
);
const InboxBody = Type.Object(
  {
    recipientId: Type.String(),
    accountId: Type.String(),
    graceSeconds: Type.Integer(),
    createdAt: Type.Integer(),
  },
  { additionalProperties: false },
);
const IncomingBody = Type.Object(
  {
    streamId: Type.String(),
    recipientId: Type.String(),
    accountId: Type.String(),
    totalMsat: MsatString,
    payments: Type.Integer(),
    lastSeq: Type.Integer(),
    missingSeqs: Type.Integer(),
    firstPaymentAt: Type.Integer(),
    lastPaymentAt: Type.Integer(),
    lapsed: Type.Boolean(),
  },
  { additionalProperties: false },
);

type Role = 'payer' | 'payee' | 'operator' | 'none';

/** Per-second and metered streaming payments; inboxes that receive streams from other nodes. */
export const streamRoutes: FastifyPluginAsyncTypebox<{
  streams: StreamsService;
  receiver: StreamReceiver;
}> = async (app, { streams, receiver }) => {
  const tags = ['streams'];
  const roleOf = (req: { params: { id: string } }, s: PublicStream): Role => {
    if (principalOf(req as never).type === 'operator') return 'operator';
    if (s.payerAccountId === req.params.id) return 'payer';
    if (s.payeeAccountId === req.params.id) return 'payee';
    return 'none';
  };
  /** The stream, if the caller is a party to it (otherwise it does not exist for them). */
  const party = async (
    req: { params: { id: string; streamId: string } },
    allowed: Role[],
  ): Promise<PublicStream> => {
    const s = await streams.get(req.params.streamId);
    const role = roleOf(req, s);
    if (role === 'none')
      throw new StreamError(StreamErrorCode.STREAM_NOT_FOUND, `no stream ${req.params.streamId}`);
    if (!allowed.includes(role))
      throw new AppError('STREAM_FORBIDDEN', `the ${role} of a stream cannot do this`, 403);
    return s;
  };

  app.post(
    '/v1/accounts/:id/streams',
    {
      config: { scope: 'pay' },
      schema: {
        tags,
        params: IdParams,
        body: Type.Object(
          {
            payee: Payee,
            rateMsat: Type.Optional(MsatString),
            perSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 * 366 })),
            priceMsatPerUnit: Type.Optional(MsatString),
            maxTotalMsat: Type.Optional(MsatString),
            maxDurationSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
            intervalSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 3600 })),
            minPaymentMsat: Type.Optional(MsatString),
            prefundMsat: Type.Optional(MsatString),
            memo: Type.Optional(Type.String({ maxLength: 500 })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: { 201: StreamBody, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const amount = (v: string | undefined) => (v === undefined ? undefined : msat(v));
      const input = Object.fromEntries(
        Object.entries({
          payee: b.payee,
          rateMsat: amount(b.rateMsat),
          perSeconds: b.perSeconds,
          priceMsatPerUnit: amount(b.priceMsatPerUnit),
          maxTotalMsat: amount(b.maxTotalMsat),
          maxDurationSeconds: b.maxDurationSeconds,
          intervalSeconds: b.intervalSeconds,
          minPaymentMsat: amount(b.minPaymentMsat),
          prefundMsat: amount(b.prefundMsat),
          memo: b.memo,
        }).filter(([, v]) => v !== undefined),
      ) as unknown as Parameters<StreamsService['create']>[1];
      return reply.code(201).send(jsonSafe(await streams.create(req.params.id, input, b.idempotencyKey)));
    },
  );

  app.get(
    '/v1/accounts/:id/streams',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        params: IdParams,
        querystring: PageQuery,
        response: {
          200: Type.Object(
            {
              streams: Type.Array(StreamBody),
              next: Type.Optional(
                Type.String({ description: 'the cursor of the next page: pass it as `before`' }),
              ),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => jsonSafe(await streams.list(req.params.id, req.query)),
  );

  app.get(
    '/v1/accounts/:id/streams/:streamId',
    {
      config: { scope: 'read' },
      schema: { tags, params: StreamParams, response: { 200: StreamBody, ...errors } },
    },
    async (req) => jsonSafe(await party(req, ['payer', 'payee', 'operator'])),
  );

  const control = (verb: 'pause' | 'resume' | 'stop', allowed: Role[]): void => {
    app.post(
      `/v1/accounts/:id/streams/:streamId/${verb}`,
      {
        config: { scope: 'pay' },
        schema: { tags, params: StreamParams, response: { 200: StreamBody, ...errors } },
      },
      async (req) => {
        await party(req, allowed);
        const id = req.params.streamId;
        const s =
          verb === 'pause'
            ? await streams.pause(id)
            : verb === 'resume'
              ? await streams.resume(id)
              : await streams.stop(id);
        return jsonSafe(s);
      },
    );
  };
  control('pause', ['payer', 'operator']);
  control('resume', ['payer', 'operator']);
  control('stop', ['payer', 'payee', 'operator']);

  app.post(
    '/v1/accounts/:id/streams/:streamId/usage',
    {
      config: { scope: 'invoice' },
      schema: {
        tags,
        description: 'The meter (the payee) reports consumed units of a metered stream.',
        params: StreamParams,
        body: Type.Object(
          { units: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) },
          { additionalProperties: false },
        ),
        response: { 200: StreamBody, ...errors },
      },
    },
    async (req) => {
      await party(req, ['payee', 'operator']);
      return jsonSafe(await streams.reportUsage(req.params.streamId, req.body.units));
    },
  );

  app.post(
    '/v1/accounts/:id/stream-inboxes',
    {
      config: { scope: 'invoice' },
      schema: {
        tags,
        description:
          'An inbox for streams from other nodes: give the payer our node pubkey and the recipient id.',
        params: IdParams,
        body: Type.Object(
          { graceSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object(
            { recipientId: Type.String(), nodePubkey: Type.String() },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(
          await receiver.createInbox(
            req.params.id,
            req.body.graceSeconds !== undefined ? { graceSeconds: req.body.graceSeconds } : {},
          ),
        ),
  );

  app.get(
    '/v1/accounts/:id/incoming-streams',
    {
      config: { scope: 'read' },
      schema: {
        tags,
        params: IdParams,
        querystring: PageQuery,
        response: {
          200: Type.Object(
            {
              inboxes: Type.Array(InboxBody),
              incoming: Type.Array(IncomingBody),
              next: Type.Optional(
                Type.String({
                  description: 'the cursor of the next page of `incoming`: pass it as `before`',
                }),
              ),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => {
      const { incoming, next } = await receiver.listIncoming(req.params.id, req.query);
      return {
        inboxes: jsonSafe(receiver.listInboxes(req.params.id)),
        incoming: jsonSafe(incoming),
        ...(next ? { next } : {}),
      };
    },
  );
};
