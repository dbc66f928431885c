import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { msat } from '../../domain/msat.js';
import type { ServiceRegistry } from '../../market/registry.js';
import type { TaskMarket } from '../../market/tasks.js';
import type { Task } from '../../market/types.js';
import { principalOf } from '../auth.js';
import { jsonSafe, type Jsonified } from '../json.js';
import { ErrorResponses, IdempotencyKey, IdParams, literals, MsatString, PageQuery } from '../schemas.js';

const errors = ErrorResponses;
const TaskStates = ['open', 'claimed', 'submitted', 'completed', 'disputed', 'resolved', 'expired'] as const;
const Unit = Type.Union([
  Type.Literal('request'),
  Type.Literal('second'),
  Type.Literal('unit'),
  Type.Literal('task'),
]);

/** A task (src/market/types.ts); `result` and `disputeReason` only for its parties and the operator. */
const TaskBody = Type.Object(
  {
    id: Type.String(),
    publisherAccountId: Type.String(),
    title: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    rewardMsat: MsatString,
    deadline: Type.Integer({ description: 'ms since the epoch' }),
    reviewSeconds: Type.Integer(),
    escrowId: Type.String(),
    state: literals(TaskStates),
    agentAccountId: Type.Optional(Type.String()),
    result: Type.Optional(Type.String()),
    disputeReason: Type.Optional(Type.String()),
    resolvedFor: Type.Optional(Type.Union([Type.Literal('agent'), Type.Literal('publisher')])),
    createdAt: Type.Integer(),
    claimedAt: Type.Optional(Type.Integer()),
    submittedAt: Type.Optional(Type.Integer()),
    closedAt: Type.Optional(Type.Integer()),
  },
  { $id: 'Task', additionalProperties: false },
);
const ReputationBody = Type.Object(
  {
    accountId: Type.String(),
    completed: Type.Integer(),
    disputed: Type.Integer(),
    lost: Type.Integer(),
    late: Type.Integer(),
  },
  { additionalProperties: false },
);
const OfferBody = Type.Object(
  {
    id: Type.String(),
    accountId: Type.String(),
    title: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    priceMsat: MsatString,
    unit: Unit,
    endpoint: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
  },
  { $id: 'Offer', additionalProperties: false },
);
const TaskParams = Type.Object({ id: IdParams.properties.id, taskId: Type.String({ maxLength: 64 }) });
const Capabilities = Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 });
const CapabilityQuery = Type.Optional(
  Type.String({ maxLength: 1000, description: 'comma-separated capabilities, all required' }),
);
const split = (q: string | undefined): string[] | undefined =>
  q === undefined ? undefined : q.split(',').filter((c) => c.length > 0);

/** Others see a task without the result: only its parties (and the operator) read that. */
function taskView(
  t: Task,
  viewer: string | 'operator',
): Jsonified<Task> | Jsonified<Omit<Task, 'result' | 'disputeReason'>> {
  const party = viewer === 'operator' || viewer === t.publisherAccountId || viewer === t.agentAccountId;
  if (party) return jsonSafe(t);
  const copy: Partial<Task> = { ...t };
  delete copy.result;
  delete copy.disputeReason;
  return jsonSafe(copy as Omit<Task, 'result' | 'disputeReason'>);
}

/** Task market, reputations and the service registry. */
export const marketRoutes: FastifyPluginAsyncTypebox<{
  market: TaskMarket;
  registry: ServiceRegistry;
}> = async (app, { market, registry }) => {
  const viewer = (req: { params: unknown }, p = principalOf(req as never)): string =>
    p.type === 'operator' ? 'operator' : (req.params as { id: string }).id;

  app.post(
    '/v1/accounts/:id/tasks',
    {
      config: { scope: 'pay' },
      schema: {
        tags: ['market'],
        params: IdParams,
        body: Type.Object(
          {
            title: Type.String({ minLength: 1, maxLength: 200 }),
            description: Type.Optional(Type.String({ maxLength: 8000 })),
            capabilities: Type.Optional(Capabilities),
            rewardMsat: MsatString,
            deadlineSeconds: Type.Integer({ minimum: 1, maximum: 60 * 86400 }),
            reviewSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 86400 })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: { 201: TaskBody, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const t = await market.publishTask(req.params.id, {
        title: b.title,
        rewardMsat: msat(b.rewardMsat),
        deadlineSeconds: b.deadlineSeconds,
        ...(b.description !== undefined ? { description: b.description } : {}),
        ...(b.capabilities !== undefined ? { capabilities: b.capabilities } : {}),
        ...(b.reviewSeconds !== undefined ? { reviewSeconds: b.reviewSeconds } : {}),
        ...(b.idempotencyKey !== undefined ? { idempotencyKey: b.idempotencyKey } : {}),
      });
      return reply.code(201).send(jsonSafe(t));
    },
  );

  app.get(
    '/v1/accounts/:id/tasks',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['market'],
        params: IdParams,
        querystring: Type.Object({
          state: Type.Optional(literals(TaskStates)),
          capability: CapabilityQuery,
          mine: Type.Optional(Type.Boolean()),
          ...PageQuery.properties,
        }),
        response: {
          200: Type.Object(
            {
              tasks: Type.Array(TaskBody),
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
    async (req) => {
      const q = req.query;
      const caps = split(q.capability);
      const { tasks, next } = await market.list(
        {
          ...(q.state !== undefined ? { state: q.state as Task['state'] } : {}),
          ...(caps ? { capability: caps } : {}),
          ...(q.mine ? { accountId: req.params.id } : {}),
        },
        {
          ...(q.limit !== undefined ? { limit: q.limit } : {}),
          ...(q.before !== undefined ? { before: q.before } : {}),
        },
      );
      return { tasks: tasks.map((t) => taskView(t, viewer(req))), ...(next ? { next } : {}) };
    },
  );

  const step = (
    path: string,
    scope: 'pay' | 'invoice',
    body: Parameters<typeof Type.Object>[0],
    run: (taskId: string, who: string, body: Record<string, unknown>) => Promise<Task>,
  ): void => {
    app.post(
      `/v1/accounts/:id/tasks/:taskId/${path}`,
      {
        config: { scope },
        schema: {
          tags: ['market'],
          params: TaskParams,
          body: Type.Object(body, { additionalProperties: false }),
          response: { 200: TaskBody, ...errors },
        },
      },
      async (req) => {
        const t = await run(req.params.taskId, req.params.id, (req.body ?? {}) as Record<string, unknown>);
        return taskView(t, viewer(req));
      },
    );
  };
  step('claim', 'invoice', {}, (id, who) => market.claim(id, who));
  step('submit', 'invoice', { result: Type.String({ minLength: 1, maxLength: 16_384 }) }, (id, who, b) =>
    market.submit(id, who, b['result'] as string),
  );
  step('accept', 'pay', {}, (id, who) => market.accept(id, who));
  step('reject', 'pay', { reason: Type.String({ minLength: 1, maxLength: 2000 }) }, (id, who, b) =>
    market.reject(id, who, b['reason'] as string),
  );

  app.post(
    '/v1/tasks/:taskId/resolve',
    {
      schema: {
        tags: ['market'],
        security: [{ operator: [] }],
        params: Type.Object({ taskId: Type.String({ maxLength: 64 }) }),
        body: Type.Object(
          { winner: Type.Union([Type.Literal('agent'), Type.Literal('publisher')]) },
          { additionalProperties: false },
        ),
        response: { 200: TaskBody, ...errors },
      },
    },
    async (req) => jsonSafe(await market.resolve(req.params.taskId, req.body.winner)),
  );

  app.get(
    '/v1/accounts/:id/reputation/:accountId',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['market'],
        params: Type.Object({ id: IdParams.properties.id, accountId: Type.String({ maxLength: 128 }) }),
        response: { 200: ReputationBody, ...errors },
      },
    },
    async (req) => market.reputation(req.params.accountId),
  );

  app.post(
    '/v1/accounts/:id/offers',
    {
      config: { scope: 'invoice' },
      schema: {
        tags: ['registry'],
        params: IdParams,
        body: Type.Object(
          {
            title: Type.String({ minLength: 1, maxLength: 200 }),
            description: Type.Optional(Type.String({ maxLength: 2000 })),
            capabilities: Capabilities,
            priceMsat: MsatString,
            unit: Unit,
            endpoint: Type.Optional(Type.String({ maxLength: 2048 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: OfferBody, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const o = await registry.advertise(req.params.id, {
        title: b.title,
        description: b.description ?? '',
        capabilities: b.capabilities,
        priceMsat: msat(b.priceMsat),
        unit: b.unit,
        ...(b.endpoint !== undefined ? { endpoint: b.endpoint } : {}),
      });
      return reply.code(201).send(jsonSafe(o));
    },
  );

  app.delete(
    '/v1/accounts/:id/offers/:offerId',
    {
      config: { scope: 'invoice' },
      schema: {
        tags: ['registry'],
        params: Type.Object({ id: IdParams.properties.id, offerId: Type.String({ maxLength: 64 }) }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      await registry.withdraw(req.params.offerId, p.type === 'operator' ? undefined : req.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/accounts/:id/registry',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['registry'],
        params: IdParams,
        querystring: Type.Object({ capability: CapabilityQuery }),
        response: {
          200: Type.Object({ offers: Type.Array(OfferBody) }, { additionalProperties: false }),
          ...errors,
        },
      },
    },
    async (req) => {
      const caps = split(req.query.capability);
      return { offers: jsonSafe(registry.find(caps ? { capability: caps } : {})) };
    },
  );
};
