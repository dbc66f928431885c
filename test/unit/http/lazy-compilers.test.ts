import { Type } from '@sinclair/typebox';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazyCompilers } from '../../../src/http/lazy-compilers.js';

async function app(): Promise<ReturnType<typeof Fastify>> {
  const a = Fastify({ schemaController: { compilersFactory: lazyCompilers() } });
  a.get(
    '/h',
    { schema: { headers: Type.Object({ 'X-Foo': Type.String({ pattern: '^[a-z]+$' }) }) } },
    () => ({
      ok: true,
    }),
  );
  a.post(
    '/b',
    {
      schema: {
        body: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
        response: { 200: Type.Object({ n: Type.Integer() }) },
      },
    },
    (req) => ({ n: (req.body as { n: number }).n, secret: 'not in the schema' }),
  );
  await a.ready();
  return a;
}

describe('lazy schema compilers', () => {
  it('validate header schemas case-insensitively, as fastify does with its own compiler', async () => {
    const a = await app();
    expect((await a.inject({ url: '/h', headers: { 'x-foo': 'abc' } })).statusCode).toBe(200);
    expect((await a.inject({ url: '/h', headers: { 'X-Foo': 'abc' } })).statusCode).toBe(200);
    expect((await a.inject({ url: '/h', headers: { 'x-foo': 'ABC' } })).statusCode).toBe(400);
    expect((await a.inject({ url: '/h' })).statusCode).toBe(400);
    await a.close();
  });

  it('report body errors and serialize responses by their schema', async () => {
    const a = await app();
    const bad = await a.inject({ method: 'POST', url: '/b', payload: { n: 'x' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'FST_ERR_VALIDATION', message: 'body/n must be integer' });
    const good = await a.inject({ method: 'POST', url: '/b', payload: { n: 3 } });
    expect(good.json()).toEqual({ n: 3 });
    await a.close();
  });

  it('refuse at registration a header schema shape they do not lower-case', async () => {
    const a = Fastify({ schemaController: { compilersFactory: lazyCompilers() } });
    a.get(
      '/d',
      { schema: { headers: { type: 'object', patternProperties: { '^X-': { type: 'string' } } } } },
      () => ({}),
    );
    await expect(a.ready()).rejects.toThrow(/patternProperties/);
  });
});
