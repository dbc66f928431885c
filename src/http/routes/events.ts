import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { jsonSafe } from '../json.js';
import { ErrorResponses, IdParams } from '../schemas.js';
import type { AccountServices } from './services.js';

/** Server-sent events for one account: payments, invoices, balances, approvals, alerts. */
export const eventRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  app.get(
    '/v1/accounts/:id/events',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['accounts'],
        description: 'text/event-stream; one JSON event per message.',
        params: IdParams,
        response: {
          200: {
            description: 'server-sent events: `event: <type>` and `data: <JSON>` per message',
            content: { 'text/event-stream': { schema: Type.String() } },
          },
          ...ErrorResponses,
        },
      },
    },
    async (req, reply) => {
      await s.ledger.requireAccount(req.params.id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      res.write(': connected\n\n');
      const unsubscribe = s.events.subscribe(req.params.id, (e) =>
        res.write(`event: ${e.type}\ndata: ${JSON.stringify(jsonSafe(e))}\n\n`),
      );
      const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
      req.raw.on('close', () => {
        clearInterval(ping);
        unsubscribe();
      });
    },
  );
};
