import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeviceBridge } from '../../devices/bridge.js';
import type { DeviceRegistry } from '../../devices/registry.js';
import type { DeviceCommerce } from '../../devices/commerce.js';
import { msat } from '../../domain/msat.js';
import { AnyObject, ErrorResponses, IdempotencyKey, IdParams, MsatString } from '../schemas.js';

const DeviceId = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'BIP340 x-only public key' });

/** The device bridge over HTTP (signed envelopes, public), and the operator's device registry. */
export const deviceRoutes: FastifyPluginAsyncTypebox<{
  bridge: DeviceBridge;
  registry: DeviceRegistry;
  gatewayId: string;
  commerce: DeviceCommerce;
}> = async (app, { bridge, registry, gatewayId, commerce }) => {
  const tags = ['devices'];
  app.post(
    '/v1/devices/:deviceId/actuations',
    {
      // Anyone may ask a device to act: they pay a hold invoice, settled only when the device acknowledges.
      config: { public: true },
      schema: {
        tags,
        params: Type.Object({ deviceId: DeviceId }),
        body: Type.Object(
          {
            command: Type.String({ minLength: 1, maxLength: 200 }),
            priceMsat: MsatString,
            timeoutSeconds: Type.Optional(Type.Integer({ minimum: 5, maximum: 3600 })),
            idempotencyKey: Type.Optional(IdempotencyKey),
          },
          { additionalProperties: false },
        ),
        response: { 201: AnyObject, ...ErrorResponses, 429: ErrorResponses[400] },
      },
    },
    async (req, reply) =>
      reply.code(201).send(
        (await commerce.requestActuation(req.params.deviceId, {
          command: req.body.command,
          priceMsat: msat(req.body.priceMsat),
          ...(req.body.timeoutSeconds !== undefined ? { timeoutSeconds: req.body.timeoutSeconds } : {}),
          ...(req.body.idempotencyKey !== undefined ? { idempotencyKey: req.body.idempotencyKey } : {}),
        })) as never,
      ),
  );

  app.get(
    '/v1/actuations/:actuationId',
    {
      config: { public: true },
      schema: {
        tags,
        params: Type.Object({ actuationId: Type.String({ maxLength: 64 }) }),
        response: { 200: AnyObject, ...ErrorResponses },
      },
    },
    async (req, reply) => {
      const a = await commerce.getActuation(req.params.actuationId);
      return a
        ? (a as never)
        : reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such actuation' } } as never);
    },
  );

  app.get(
    '/v1/sales/:paymentHash',
    {
      config: { public: true },
      schema: {
        tags,
        description: 'The reading a device sold, for whoever proves the payment with its preimage.',
        params: Type.Object({ paymentHash: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
        querystring: Type.Object({ preimage: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
        response: { 200: AnyObject, ...ErrorResponses },
      },
    },
    async (req) => (await commerce.readSale(req.params.paymentHash, req.query.preimage)) as never,
  );

  app.post(
    '/v1/device',
    {
      // Authenticated by the envelope's signature, not by a bearer key.
      config: { public: true },
      schema: {
        tags,
        description:
          'A signed device request (firmware-bridge/PROTOCOL.md); the answer is a signed response envelope.',
        body: AnyObject,
        response: { 200: AnyObject, ...ErrorResponses },
      },
    },
    async (req, reply) => {
      const r = await bridge.handle(req.body);
      return 'envelope' in r ? (r.envelope as never) : reply.code(r.status).send({ error: r.error } as never);
    },
  );

  app.get(
    '/v1/device/gateway',
    {
      config: { public: true },
      schema: {
        tags,
        description: 'The gateway id devices pin (take it from a trusted channel when provisioning).',
        response: { 200: Type.Object({ gatewayId: Type.String(), protocolVersion: Type.Integer() }) },
      },
    },
    async () => ({ gatewayId, protocolVersion: 1 }),
  );

  app.post(
    '/v1/device/enroll',
    {
      config: { public: true },
      schema: {
        tags,
        body: Type.Object(
          {
            deviceId: DeviceId,
            code: Type.String({ minLength: 4, maxLength: 32 }),
            signature: Type.String({ pattern: '^[0-9a-f]{128}$' }),
          },
          { additionalProperties: false },
        ),
        response: { 201: AnyObject, ...ErrorResponses },
      },
    },
    async (req, reply) => reply.code(201).send((await registry.enroll(req.body)) as never),
  );

  app.post(
    '/v1/devices',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        body: Type.Object(
          {
            deviceId: DeviceId,
            accountId: IdParams.properties.id,
            name: Type.String({ minLength: 1, maxLength: 200 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: AnyObject, ...ErrorResponses },
      },
    },
    async (req, reply) => reply.code(201).send((await registry.register(req.body)) as never),
  );

  app.get(
    '/v1/devices',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        querystring: Type.Object({ accountId: Type.Optional(Type.String({ maxLength: 128 })) }),
        response: { 200: Type.Object({ devices: Type.Array(AnyObject) }) },
      },
    },
    async (req) => ({ devices: registry.list(req.query.accountId) as never }),
  );

  app.post(
    '/v1/devices/:deviceId/revoke',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        params: Type.Object({ deviceId: DeviceId }),
        response: { 200: AnyObject, ...ErrorResponses },
      },
    },
    async (req) => (await registry.revoke(req.params.deviceId)) as never,
  );

  app.post(
    '/v1/accounts/:id/device-enrollments',
    {
      config: { scope: 'admin' },
      schema: {
        tags,
        description: 'A one-time code with which a device enrolls its own key for this account (shown once).',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 30 * 86400 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ code: Type.String(), expiresAt: Type.Integer() }), ...ErrorResponses },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await registry.createEnrollment(req.params.id, req.body.name, req.body.ttlSeconds)),
  );
};
