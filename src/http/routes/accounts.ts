import { leaderForwarding } from '../leader-forwarding.js';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { msat } from '../../domain/msat.js';
import { isGatewayAccount, type Account } from '../../ledger/types.js';
import { tierPolicy } from '../../policy/tiers.js';
import {
  AccountBody,
  ErrorResponses,
  IdempotencyKey,
  IdParams,
  JournalEntryBody,
  MsatString,
  NewAccountId,
  Tier,
} from '../schemas.js';
import { approvalRoutes } from './approvals.js';
import { eventRoutes } from './events.js';
import { escrowRoutes } from './escrow.js';
import { marketRoutes } from './market.js';
import { streamRoutes } from './streams.js';
import { deviceRoutes } from './devices.js';
import { energyRoutes } from './energy.js';
import { auctionRoutes } from './auctions.js';
import { l402Routes } from './l402.js';
import { keyRoutes } from './keys.js';
import { moneyRoutes } from './money.js';
import { policyRoutes } from './policies.js';
import { accountView, type AccountServices } from './services.js';

export type { AccountServices } from './services.js';

const Kind = Type.Union([Type.Literal('agent'), Type.Literal('device'), Type.Literal('service')]);
const errors = ErrorResponses;

/** Accounts: create, list, show, fund, freeze, history; and everything under an account. */
export const accountRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  const view = async (id: string) =>
    accountView(await s.ledger.requireAccount(id), (await s.policies.find(id))?.tier);

  // The gateway's own accounts can be read, never changed through the account routes (policy,
  // keys, freeze, funding, payments...): the gateway keeps them itself.
  app.addHook('preHandler', async (req, reply) => {
    const id = (req.params as { id?: unknown } | undefined)?.id;
    if (
      req.method === 'GET' ||
      typeof id !== 'string' ||
      !req.routeOptions.url?.startsWith('/v1/accounts/:id')
    )
      return;
    if (isGatewayAccount(id, (await s.ledger.getAccount(id))?.kind))
      return reply.code(400).send({
        error: { code: 'INVALID_ARGUMENT', message: 'the gateway keeps its system accounts itself' },
      });
  });

  app.post(
    '/v1/accounts',
    {
      schema: {
        tags: ['accounts'],
        security: [{ operator: [] }],
        body: Type.Object(
          {
            kind: Kind,
            name: Type.String({ minLength: 1, maxLength: 200 }),
            tier: Type.Optional(Tier),
            id: Type.Optional(NewAccountId),
          },
          { additionalProperties: false },
        ),
        response: { 201: AccountBody, ...errors },
      },
    },
    async (req, reply) => {
      if (req.body.id) await s.ledger.ensure({ accounts: [req.body.id] });
      const created = s.ledger.createAccount({
        ...(req.body.id ? { id: req.body.id } : {}),
        kind: req.body.kind,
        name: req.body.name,
      });
      await created.durable;
      // Deny by default: a new account is view-only until the operator grants a tier or rules.
      await s.policies.set(created.value.id, tierPolicy(req.body.tier ?? 'L0', s.tiers));
      return reply.code(201).send(await view(created.value.id));
    },
  );

  app.get(
    '/v1/accounts',
    {
      schema: {
        tags: ['accounts'],
        security: [{ operator: [] }],
        description:
          "Every account in id order; or those whose id or name (`by`, any case for names) starts with `prefix`; or the frozen ones (`frozen=true`). Paged from the store's indexes: pass `next` as `after`.",
        querystring: Type.Object(
          {
            after: Type.Optional(Type.String({ minLength: 1, maxLength: 400 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            prefix: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            by: Type.Optional(Type.Union([Type.Literal('id'), Type.Literal('name')], { default: 'id' })),
            frozen: Type.Optional(Type.Boolean({ description: 'true: only the frozen accounts' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            {
              accounts: Type.Array(AccountBody),
              /** Pass as `after` for the next page; absent on the last one. */
              next: Type.Optional(Type.String()),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      // A page from disk (accounts are not all in memory); system accounts skipped.
      const { limit = 500, after, prefix, by = 'id', frozen } = req.query;
      if (frozen === true && prefix !== undefined)
        return reply.code(400).send({
          error: {
            code: 'INVALID_ARGUMENT',
            message: 'search by prefix or list the frozen accounts, not both',
          },
        });
      const cursor = after !== undefined ? { after } : {};
      let page: Account[];
      let next: string | undefined;
      if (prefix !== undefined) {
        const found = await s.ledger.searchAccounts({ by, prefix, limit, ...cursor });
        page = found.accounts;
        next = found.next;
      } else {
        page = frozen
          ? await s.ledger.frozenAccounts({ limit, ...cursor })
          : await s.ledger.listAccounts({ limit, ...cursor });
        next = page.length === limit ? page[page.length - 1]?.id : undefined;
      }
      await s.policies.ensure(page.map((a) => a.id));
      return {
        accounts: page
          .filter((a) => !a.id.startsWith('sys:'))
          .map((a) => accountView(a, s.policies.get(a.id)?.tier)),
        ...(next !== undefined ? { next } : {}),
      };
    },
  );

  app.get(
    '/v1/accounts/:id',
    {
      config: { scope: 'read' },
      schema: { tags: ['accounts'], params: IdParams, response: { 200: AccountBody, ...errors } },
    },
    async (req) => view(req.params.id),
  );

  app.post(
    '/v1/accounts/:id/fund',
    {
      schema: {
        tags: ['accounts'],
        description:
          "Credits the account from the operator's funds (an allocation of the node's liquidity). System accounts cannot be funded; no balance may exceed 2100000000000000000 msat (409 BALANCE_LIMIT_EXCEEDED). Idempotency keys of funding are the operator's.",
        security: [{ operator: [] }],
        params: IdParams,
        body: Type.Object(
          { amountMsat: MsatString, idempotencyKey: Type.Optional(IdempotencyKey) },
          { additionalProperties: false },
        ),
        response: { 200: AccountBody, ...errors },
      },
    },
    async (req) => {
      await s.payments.fund(req.params.id, msat(req.body.amountMsat), req.body.idempotencyKey);
      return view(req.params.id);
    },
  );

  for (const [path, frozen] of [
    ['freeze', true],
    ['unfreeze', false],
  ] as const) {
    app.post(
      `/v1/accounts/:id/${path}`,
      {
        schema: {
          tags: ['accounts'],
          security: [{ operator: [] }],
          params: IdParams,
          body: Type.Optional(
            Type.Object(
              { reason: Type.Optional(Type.String({ maxLength: 500 })) },
              { additionalProperties: false },
            ),
          ),
          response: { 200: AccountBody, ...errors },
        },
      },
      async (req) => {
        await s.ledger.ensure({ spend: [req.params.id] });
        await s.ledger.setFrozen(req.params.id, frozen, req.body?.reason ?? `operator ${path}`).durable;
        return view(req.params.id);
      },
    );
  }

  app.get(
    '/v1/accounts/:id/history',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['accounts'],
        params: IdParams,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
          beforeSeq: Type.Optional(Type.Integer({ minimum: 1 })),
        }),
        response: {
          200: Type.Object({ entries: Type.Array(JournalEntryBody) }, { additionalProperties: false }),
          ...errors,
        },
      },
    },
    async (req) => {
      await s.ledger.requireAccount(req.params.id);
      const entries = await s.ledger.journal(req.params.id, {
        limit: req.query.limit ?? 50,
        ...(req.query.beforeSeq ? { beforeSeq: req.query.beforeSeq } : {}),
      });
      return { entries: entries };
    },
  );

  await app.register(policyRoutes, s);
  await app.register(keyRoutes, s);
  await app.register(moneyRoutes, s);
  await app.register(approvalRoutes, s);
  await app.register(eventRoutes, s);
  // After authentication: a follower of a shared store passes leader-owned requests to the leader.
  app.addHook('onRequest', leaderForwarding(s.owned));
  await app.register(async (owned) => {
    owned.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), leaderOwned: true };
    });
    if (s.escrow) await owned.register(escrowRoutes, { escrow: s.escrow });
    if (s.market && s.registry)
      await owned.register(marketRoutes, { market: s.market, registry: s.registry });
    if (s.streams && s.receiver)
      await owned.register(streamRoutes, { streams: s.streams, receiver: s.receiver });
    if (s.energy) await owned.register(energyRoutes, { energy: s.energy });
    if (s.auctions) await owned.register(auctionRoutes, { auctions: s.auctions });
  });
  if (s.devices) await app.register(deviceRoutes, s.devices);
  if (s.l402) await app.register(l402Routes, { revocations: s.l402.revocations });
};
