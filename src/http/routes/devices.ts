import { FORWARDED_BY } from '../../cluster/leader-owned.js';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { DeviceBridge } from '../../devices/bridge.js';
import type { DeviceRegistry } from '../../devices/registry.js';
import type { DeviceCommerce } from '../../devices/commerce.js';
import { msat } from '../../domain/msat.js';
import { ErrorResponses, Hash, IdempotencyKey, IdParams, literals, MsatString } from '../schemas.js';

const DeviceId = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'BIP340 x-only public key' });
const errors = ErrorResponses;

/** A device of the registry (src/devices/types.ts `Device`). */
const DeviceBody = Type.Object(
  {
    deviceId: DeviceId,
    accountId: Type.String(),
    name: Type.String(),
    state: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
    lastCounter: Type.Integer(),
    lastEventSeq: Type.Integer(),
    createdAt: Type.Integer(),
    revokedAt: Type.Optional(Type.Integer()),
    lastSeenAt: Type.Optional(
      Type.Integer({ description: 'last heard from (stored at most a minute behind), ms since the epoch' }),
    ),
  },
  { $id: 'Device', additionalProperties: false },
);
/** A device in the operator's list: its record and what the gateway knows of it now. */
const DeviceStatusBody = Type.Object(
  {
    ...DeviceBody.properties,
    online: Type.Boolean({ description: 'connected to the embedded MQTT broker now' }),
    requestsSinceStart: Type.Integer({ description: 'requests accepted since the gateway started' }),
  },
  { additionalProperties: false },
);
/** The gateway's signed answer to a device request (firmware-bridge/PROTOCOL.md). */
const ResponseEnvelopeBody = Type.Object(
  {
    v: Type.Integer(),
    g: Type.String(),
    d: Type.String(),
    c: Type.Integer(),
    t: Type.Integer(),
    ok: Type.Boolean(),
    b: Type.String({ description: 'result JSON text when ok, else {"code","message"}' }),
    s: Type.String(),
  },
  { additionalProperties: false },
);
const RequestEnvelopeBody = Type.Record(Type.String(), Type.Unknown(), {
  description: 'a signed request envelope; its fields are checked by the bridge (BAD_ENVELOPE)',
});

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
      config: { public: true, leaderOwned: true },
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
        response: {
          201: Type.Object(
            { actuationId: Type.String(), request: Type.String(), paymentHash: Hash },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) =>
      reply.code(201).send(
        await commerce.requestActuation(req.params.deviceId, {
          command: req.body.command,
          priceMsat: msat(req.body.priceMsat),
          ...(req.body.timeoutSeconds !== undefined ? { timeoutSeconds: req.body.timeoutSeconds } : {}),
          ...(req.body.idempotencyKey !== undefined ? { idempotencyKey: req.body.idempotencyKey } : {}),
        }),
      ),
  );

  app.get(
    '/v1/actuations/:actuationId',
    {
      config: { public: true, leaderOwned: true },
      schema: {
        tags,
        params: Type.Object({ actuationId: Type.String({ maxLength: 64 }) }),
        response: {
          200: Type.Object(
            {
              actuationId: Type.String(),
              deviceId: DeviceId,
              command: Type.String(),
              state: literals(['awaiting_payment', 'sent', 'acknowledged', 'refunded']),
              createdAt: Type.Integer(),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const a = await commerce.getActuation(req.params.actuationId);
      return a ? a : reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no such actuation' } });
    },
  );

  app.get(
    '/v1/sales/:paymentHash',
    {
      config: { public: true, leaderOwned: true },
      schema: {
        tags,
        description: 'The reading a device sold, for whoever proves the payment with its preimage.',
        params: Type.Object({ paymentHash: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
        querystring: Type.Object({ preimage: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
        response: {
          200: Type.Object(
            {
              state: literals(['offered', 'sold', 'delivered', 'expired']),
              reading: Type.Optional(Type.String()),
            },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => commerce.readSale(req.params.paymentHash, req.query.preimage),
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
        body: RequestEnvelopeBody,
        response: { 200: ResponseEnvelopeBody, ...errors },
      },
    },
    async (req, reply) => {
      const r = await bridge.handle(req.body, { relayed: req.headers[FORWARDED_BY] !== undefined });
      return 'envelope' in r ? r.envelope : reply.code(r.status).send({ error: r.error });
    },
  );

  app.get(
    '/v1/device/gateway',
    {
      config: { public: true },
      schema: {
        tags,
        description: 'The gateway id devices pin (take it from a trusted channel when provisioning).',
        response: {
          200: Type.Object(
            { gatewayId: Type.String(), protocolVersion: Type.Integer() },
            { additionalProperties: false },
          ),
          ...errors,
        },
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
        response: { 201: DeviceBody, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await registry.enroll(req.body)),
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
        response: { 201: DeviceBody, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send(await registry.register(req.body)),
  );

  app.get(
    '/v1/devices',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        description: 'Devices in id order, a page at a time: pass `next` as `after` for the next page.',
        querystring: Type.Object(
          {
            accountId: Type.Optional(Type.String({ maxLength: 128 })),
            after: Type.Optional(DeviceId),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object(
            { devices: Type.Array(DeviceStatusBody), next: Type.Optional(DeviceId) },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req) => {
      const limit = req.query.limit ?? 100;
      const devices = await registry.page({
        limit,
        ...(req.query.after !== undefined ? { after: req.query.after } : {}),
        ...(req.query.accountId !== undefined ? { accountId: req.query.accountId } : {}),
      });
      const last = devices[devices.length - 1];
      return { devices, ...(devices.length === limit && last ? { next: last.deviceId } : {}) };
    },
  );

  app.post(
    '/v1/devices/:deviceId/revoke',
    {
      schema: {
        tags,
        security: [{ operator: [] }],
        params: Type.Object({ deviceId: DeviceId }),
        response: { 200: DeviceBody, ...errors },
      },
    },
    async (req) => registry.revoke(req.params.deviceId),
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
        response: {
          201: Type.Object(
            { code: Type.String(), expiresAt: Type.Integer() },
            { additionalProperties: false },
          ),
          ...errors,
        },
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(await registry.createEnrollment(req.params.id, req.body.name, req.body.ttlSeconds)),
  );
};
