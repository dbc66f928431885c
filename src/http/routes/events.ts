import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { jsonSafe } from '../json.js';
import { ErrorResponses, IdParams } from '../schemas.js';
import type { AccountEvent } from '../../payments/types.js';
import type { AccountServices } from './services.js';

const sseResponse = {
  200: {
    description: 'server-sent events: `event: <type>` and `data: <JSON>` per message',
    content: { 'text/event-stream': { schema: Type.String() } },
  },
  ...ErrorResponses,
};

/**
 * The operator-wide feed: every account's events but `balance` (that one is per account: asking
 * for every account's would make each ledger batch compute them all).
 */
const OPERATOR_FEED_TYPES = [
  'payment',
  'invoice',
  'approval',
  'alert',
  'escrow',
  'task',
  'stream',
  'stream_lapsed',
  'stream_resumed',
  'energy_order',
  'energy_trade',
  'auction',
] as const satisfies readonly AccountEvent['type'][];

/** Answers with an event stream fed by `subscribe` until the client goes away. */
function serveEvents(
  req: FastifyRequest,
  reply: FastifyReply,
  subscribe: (send: (type: string, data: unknown) => void) => () => void,
): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  res.write(': connected\n\n');
  const unsubscribe = subscribe((type, data) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify(jsonSafe(data))}\n\n`),
  );
  const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
  req.raw.on('close', () => {
    clearInterval(ping);
    unsubscribe();
  });
}

/**
 * Server-sent events for one account (payments, invoices, balances, approvals, alerts), and for
 * all: on a shared store, those of every instance (the event relay), whichever one this client
 * reached.
 */
export const eventRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  app.get(
    '/v1/accounts/:id/events',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['accounts'],
        description: 'text/event-stream; one JSON event per message.',
        params: IdParams,
        response: sseResponse,
      },
    },
    async (req, reply) => {
      await s.ledger.requireAccount(req.params.id);
      serveEvents(req, reply, (send) =>
        s.events.subscribe(req.params.id, (e) => send(e.type, e), { everyInstance: true }),
      );
    },
  );

  app.get(
    '/v1/events',
    {
      schema: {
        tags: ['operations'],
        security: [{ operator: [] }],
        description:
          "text/event-stream of every account's events (payments, invoices, approvals, alerts, escrow, " +
          'tasks, streams, energy, auctions; `balance` only per account), each with its `accountId`.',
        response: sseResponse,
      },
    },
    async (req, reply) => {
      serveEvents(req, reply, (send) =>
        s.events.subscribeAll((accountId, e) => send(e.type, { accountId, ...e }), OPERATOR_FEED_TYPES, {
          everyInstance: true,
        }),
      );
    },
  );
};
