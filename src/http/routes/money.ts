import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { msat } from '../../domain/msat.js';
import {
  ErrorResponses,
  Hash,
  IdempotencyKey,
  IdParams,
  InvoiceBody,
  MsatString,
  PaymentBody,
} from '../schemas.js';
import type { AccountServices } from './services.js';
import { accountView } from './services.js';
import { invoiceView, paymentView } from './views.js';
import { AccountBody } from '../schemas.js';
import { RecordIndex } from '../../ledger/record-index.js';
import type { Payment } from '../../payments/types.js';

const errors = ErrorResponses;

const PayBody = Type.Union([
  Type.Object(
    {
      request: Type.String({ minLength: 10, maxLength: 8000, description: 'a BOLT11 invoice' }),
      amountMsat: Type.Optional(MsatString),
      maxFeeMsat: Type.Optional(MsatString),
      idempotencyKey: Type.Optional(IdempotencyKey),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      keysend: Type.Object(
        {
          destination: Type.String({ pattern: '^0[23][0-9a-f]{64}$' }),
          amountMsat: MsatString,
          records: Type.Optional(
            Type.Array(
              Type.Object({
                type: Type.String({ pattern: '^[0-9]{1,20}$' }),
                value: Type.String({ pattern: '^([0-9a-f]{2})+$' }),
              }),
              { maxItems: 16 },
            ),
          ),
        },
        { additionalProperties: false },
      ),
      maxFeeMsat: Type.Optional(MsatString),
      idempotencyKey: Type.Optional(IdempotencyKey),
    },
    { additionalProperties: false },
  ),
]);

/** Invoices, payments and internal transfers of an account. */
/** A page of payments: `limit`, and the previous page's `nextCursor` as `cursor`. */
const PaymentPageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    cursor: Type.Optional(Type.String({ pattern: RecordIndex.CURSOR.source })),
  },
  { additionalProperties: false },
);
const PaymentPageBody = Type.Object(
  {
    payments: Type.Array(PaymentBody),
    nextCursor: Type.Optional(
      Type.String({ description: 'the cursor of the next page: pass it as `cursor`' }),
    ),
  },
  { additionalProperties: false },
);
const pageOf = (q: Static<typeof PaymentPageQuery>) => ({
  limit: q.limit ?? 100,
  ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
});
const paymentPage = (page: { payments: Payment[]; nextCursor?: string }) => ({
  payments: page.payments.map(paymentView),
  ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
});

export const moneyRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  app.post(
    '/v1/accounts/:id/invoices',
    {
      config: { scope: 'invoice' },
      schema: {
        tags: ['invoices'],
        params: IdParams,
        body: Type.Object(
          {
            amountMsat: MsatString,
            description: Type.Optional(Type.String({ maxLength: 639 })),
            expirySeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400 })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: { 201: InvoiceBody, ...errors },
      },
    },
    async (req, reply) => {
      const inv = await s.payments.createInvoice(req.params.id, {
        amountMsat: msat(req.body.amountMsat),
        ...(req.body.description !== undefined ? { description: req.body.description } : {}),
        ...(req.body.expirySeconds !== undefined ? { expirySeconds: req.body.expirySeconds } : {}),
        ...(req.body.idempotencyKey !== undefined ? { idempotencyKey: req.body.idempotencyKey } : {}),
      });
      return reply.code(201).send(invoiceView(inv));
    },
  );

  app.get(
    '/v1/accounts/:id/invoices/:hash',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['invoices'],
        params: Type.Object({ id: IdParams.properties.id, hash: Hash }),
        response: { 200: InvoiceBody, ...errors },
      },
    },
    async (req, reply) => {
      const inv = await s.payments.getInvoice(req.params.hash);
      if (!inv || inv.accountId !== req.params.id)
        return reply
          .code(404)
          .send({ error: { code: 'INVOICE_NOT_FOUND', message: 'no such invoice on this account' } });
      return invoiceView(inv);
    },
  );

  app.post(
    '/v1/accounts/:id/payments',
    {
      config: { scope: 'pay' },
      schema: {
        tags: ['payments'],
        description:
          'Pays a BOLT11 invoice or sends a keysend. 201 when final (succeeded or failed), 202 while pending or awaiting approval. Policy denials are 403/429 with a stable code; an agent should stop on 403.',
        params: IdParams,
        body: PayBody,
        response: { 201: PaymentBody, 202: PaymentBody, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const maxFee = b.maxFeeMsat !== undefined ? { maxFeeMsat: msat(b.maxFeeMsat) } : {};
      const idem = b.idempotencyKey !== undefined ? { idempotencyKey: b.idempotencyKey } : {};
      const payment =
        'keysend' in b
          ? await s.payments.keysend(req.params.id, {
              destination: b.keysend.destination,
              amountMsat: msat(b.keysend.amountMsat),
              ...(b.keysend.records
                ? { records: b.keysend.records.map((r) => ({ type: BigInt(r.type), value: r.value })) }
                : {}),
              ...maxFee,
              ...idem,
            })
          : await s.payments.pay(req.params.id, {
              request: b.request,
              ...(b.amountMsat !== undefined ? { amountMsat: msat(b.amountMsat) } : {}),
              ...maxFee,
              ...idem,
            });
      const pending = payment.status === 'pending' || payment.status === 'awaiting_approval';
      return reply.code(pending ? 202 : 201).send(paymentView(payment));
    },
  );

  app.get(
    '/v1/accounts/:id/payments',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['payments'],
        params: IdParams,
        description:
          'Newest first, read from disk a page at a time: pass `nextCursor` as `cursor` for the next page.',
        querystring: PaymentPageQuery,
        response: { 200: PaymentPageBody, ...errors },
      },
    },
    async (req) => {
      await s.ledger.requireAccount(req.params.id);
      return paymentPage(await s.payments.pagePayments(req.params.id, pageOf(req.query)));
    },
  );

  app.get(
    '/v1/payments',
    {
      schema: {
        tags: ['payments'],
        security: [{ operator: [] }],
        description:
          "Every account's payments, newest first, read from disk a page at a time: pass `nextCursor` as `cursor` for the next page.",
        querystring: PaymentPageQuery,
        response: { 200: PaymentPageBody, ...errors },
      },
    },
    async (req) => {
      return paymentPage(await s.payments.pageAllPayments(pageOf(req.query)));
    },
  );

  app.get(
    '/v1/accounts/:id/payments/:paymentId',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['payments'],
        params: Type.Object({ id: IdParams.properties.id, paymentId: Type.String({ maxLength: 128 }) }),
        response: { 200: PaymentBody, ...errors },
      },
    },
    async (req, reply) => {
      const p = await s.payments.findPayment(req.params.paymentId);
      if (!p || p.accountId !== req.params.id)
        return reply
          .code(404)
          .send({ error: { code: 'PAYMENT_NOT_FOUND', message: 'no such payment on this account' } });
      return paymentView(p);
    },
  );

  app.post(
    '/v1/accounts/:id/transfers',
    {
      config: { scope: 'pay' },
      schema: {
        tags: ['payments'],
        description:
          'Moves funds to another account of this gateway, within the spending policy. No Lightning payment is made.',
        params: IdParams,
        body: Type.Object(
          {
            toAccountId: Type.String({ minLength: 1 }),
            amountMsat: MsatString,
            memo: Type.Optional(Type.String({ maxLength: 500 })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object(
            { transferId: Type.String(), replayed: Type.Boolean(), account: AccountBody },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const r = await s.payments.transfer(
        req.params.id,
        req.body.toAccountId,
        msat(req.body.amountMsat),
        req.body.memo ?? '',
        req.body.idempotencyKey,
      );
      return reply
        .code(201)
        .send({ ...r, account: accountView(await s.ledger.requireAccount(req.params.id)) });
    },
  );

  app.get(
    '/v1/liabilities',
    {
      schema: {
        tags: ['operations'],
        description: 'Total owed to accounts against the node’s channel and on-chain balances.',
        security: [{ operator: [] }],
        response: {
          200: Type.Object(
            {
              accountsMsat: MsatString,
              pendingOutMsat: MsatString,
              nodeChannelLocalMsat: MsatString,
              nodeOnchainMsat: MsatString,
              coverage: Type.String({
                description: 'node funds over liabilities, e.g. "1.2500"; "inf" without liabilities',
              }),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async () => ({ ...(await s.payments.liabilities()) }),
  );

  app.post(
    '/v1/reconcile',
    {
      schema: {
        tags: ['operations'],
        security: [{ operator: [] }],
        response: {
          200: Type.Object(
            { checked: Type.Integer(), mismatches: Type.Integer() },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async () => s.payments.reconcile({ full: true }),
  );

  const ReconciliationJob = Type.Object(
    {
      state: Type.Union([
        Type.Literal('idle'),
        Type.Literal('running'),
        Type.Literal('done'),
        Type.Literal('failed'),
      ]),
      checked: Type.Integer({ description: 'payments compared with LND so far' }),
      mismatches: Type.Integer(),
      startedAt: Type.Optional(Type.Integer({ description: 'ms since the epoch' })),
      finishedAt: Type.Optional(Type.Integer({ description: 'ms since the epoch' })),
    },
    { additionalProperties: false },
  );

  app.post(
    '/v1/reconciliation',
    {
      schema: {
        tags: ['operations'],
        security: [{ operator: [] }],
        description:
          'Starts a full reconciliation in the background: every final Lightning payment, paged from disk, is compared with LND. One at a time (409 RECONCILIATION_RUNNING while one runs).',
        response: { 202: ReconciliationJob, ...errors },
      },
    },
    async (_req, reply) => reply.code(202).send(s.payments.startReconciliation()),
  );

  app.get(
    '/v1/reconciliation',
    {
      schema: {
        tags: ['operations'],
        security: [{ operator: [] }],
        description: 'The state and progress of the last full reconciliation.',
        response: { 200: ReconciliationJob, ...errors },
      },
    },
    async () => s.payments.reconciliationJob(),
  );
};
