import { pay } from 'ln-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { PaidStack } from '../../support/paid-stack.js';
import { rawLnd } from '../../support/regtest.js';

const OPERATOR_KEY = 'admin-integration-operator-key-0123456789';
let upstreamUrl = '';
const s = new PaidStack({
  operatorKey: OPERATOR_KEY,
  seed: (upstream) => {
    upstreamUrl = upstream;
    return [
      {
        name: 'seed',
        pathPrefix: '/health',
        upstream,
        mode: 'paid',
        pricePerRequestMsat: '1000',
        creditMsat: '5000',
        lifetimeSeconds: 3600,
        headers: { 'x-provider-key': 'upstream-secret-value' },
      },
    ];
  },
});

beforeAll(() => s.open());
afterAll(() => s.close());

const admin = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: object) => {
  const res = await s.api.inject({
    method,
    url,
    headers: { authorization: `Bearer ${OPERATOR_KEY}` },
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>(), text: res.body };
};

const get = (path: string, authorization?: string) =>
  fetch(s.proxy.url + path, { headers: authorization ? { authorization } : {} });

/** Asks the proxy for a challenge on `path` and pays it from bob: a working Authorization header. */
async function buyCredential(path: string): Promise<{ authorization: string; tokenId: string }> {
  const challenge = await get(path);
  expect(challenge.status).toBe(402);
  const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(challenge.headers.get('www-authenticate')!)!;
  const paidInvoice = await pay({ lnd: await rawLnd('bob'), request: m[2]! });
  const tokenId = decodeV2(Buffer.from(m[1]!, 'base64')).identifier.subarray(34).toString('hex');
  return { authorization: `L402 ${m[1]}:${paidInvoice.secret}`, tokenId };
}

const added = (name: string, pathPrefix: string, extra: object = {}) => ({
  name,
  pathPrefix,
  upstream: upstreamUrl,
  mode: 'paid',
  pricePerRequestMsat: '500',
  creditMsat: '3000',
  lifetimeSeconds: 3600,
  ...extra,
});

describe('paid services admin API on regtest', () => {
  it('lists the seeded service without its upstream header values', async () => {
    const res = await admin('GET', '/v1/proxy/services');
    expect(res.status).toBe(200);
    expect(res.body['services']).toEqual([
      expect.objectContaining({ name: 'seed', origin: 'config', headerNames: ['x-provider-key'] }),
    ]);
    expect(res.text).not.toContain('upstream-secret-value');
  });

  it('adds a service that the proxy serves from the next request, and refuses bad or duplicate ones', async () => {
    expect((await get('/v1/models')).status).toBe(404);
    const res = await admin('POST', '/v1/proxy/services', added('models', '/v1/models'));
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: 'models', origin: 'api', pricePerRequestMsat: '500' });
    const challenge = await get('/v1/models');
    expect(challenge.status).toBe(402);
    expect(((await challenge.json()) as { creditMsat: string }).creditMsat).toBe('3000');

    expect((await admin('POST', '/v1/proxy/services', added('models', '/x/'))).body).toMatchObject({
      error: { code: 'SERVICE_EXISTS' },
    });
    const noPrice = await admin('POST', '/v1/proxy/services', {
      ...added('noprice', '/np/'),
      pricePerRequestMsat: undefined,
    });
    expect(noPrice.status).toBe(400);
    expect(noPrice.body).toMatchObject({ error: { code: 'INVALID_SERVICE' } });
    const badRegexp = await admin('POST', '/v1/proxy/services', added('bad', '/b/', { allowPaths: ['('] }));
    expect(badRegexp.status).toBe(400);
    expect(badRegexp.body).toMatchObject({ error: { code: 'INVALID_SERVICE' } });
    const badBody = await admin('POST', '/v1/proxy/services', { name: 'Bad Name' });
    expect(badBody.status).toBe(400);
    expect((await admin('GET', '/v1/proxy/services/nope')).body).toMatchObject({
      error: { code: 'SERVICE_NOT_FOUND' },
    });
  });

  it('changes a price live, keeps the upstream headers, counts requests and revenue, lists and revokes credentials', async () => {
    const patched = await admin('PATCH', '/v1/proxy/services/seed', { pricePerRequestMsat: '2000' });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      pricePerRequestMsat: '2000',
      // Fields left out stay as they were (no schema default fills them in).
      pathPrefix: '/health',
      lifetimeSeconds: 3600,
      origin: 'config-changed',
      headerNames: ['x-provider-key'],
    });

    const { authorization, tokenId } = await buyCredential('/health');
    const first = await get('/health', authorization);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-l402-credit-remaining-msat')).toBe('3000');
    expect((await get('/health', authorization)).headers.get('x-l402-credit-remaining-msat')).toBe('1000');

    const stats = await admin('GET', '/v1/proxy/services/seed/stats?period=hour');
    expect(stats.status).toBe(200);
    expect(stats.body['totals']).toEqual({
      requests: 3,
      paidRequests: 2,
      challenges: 1,
      revenueMsat: '4000',
    });
    const daily = await admin('GET', '/v1/proxy/services/seed/stats?period=day');
    expect(daily.body['totals']).toMatchObject({ paidRequests: 2, revenueMsat: '4000' });
    expect((await admin('GET', '/v1/proxy/services/seed/stats?period=week')).status).toBe(400);

    const listed = await admin('GET', '/v1/l402/credentials?limit=500');
    expect(listed.status).toBe(200);
    const mine = (listed.body['credentials'] as { tokenId: string }[]).find((c) => c.tokenId === tokenId);
    expect(mine).toMatchObject({ service: 'seed', balanceMsat: '1000', revoked: false });

    const revoked = await admin('POST', '/v1/l402/credentials/revoke', { tokenId });
    expect(revoked.status).toBe(200);
    const refused = await get('/health', authorization);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_REVOKED');
    const after = await admin('GET', '/v1/l402/credentials?limit=500');
    expect(
      (after.body['credentials'] as { tokenId: string }[]).find((c) => c.tokenId === tokenId),
    ).toMatchObject({ revoked: true, revokedAt: expect.any(Number) });
  });

  it('pages the credential list', async () => {
    await buyCredential('/v1/models');
    const first = await admin('GET', '/v1/l402/credentials?limit=1');
    expect((first.body['credentials'] as unknown[]).length).toBe(1);
    expect(first.body['next']).toMatch(/^[0-9a-f]{64}$/);
    const second = await admin('GET', `/v1/l402/credentials?limit=1&after=${String(first.body['next'])}`);
    expect(
      (second.body['credentials'] as { tokenId: string }[])[0]!.tokenId > String(first.body['next']),
    ).toBe(true);
  });

  it('removes services live, and keeps every change and the statistics across a restart', async () => {
    expect((await admin('POST', '/v1/proxy/services', added('kept', '/kept/'))).status).toBe(201);
    expect((await admin('DELETE', '/v1/proxy/services/models')).body).toEqual({ removed: 'models' });
    const gone = await get('/v1/models');
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('NO_SERVICE');

    await s.stop();
    await s.start();
    const listed = (await admin('GET', '/v1/proxy/services')).body['services'] as {
      name: string;
      origin: string;
      pricePerRequestMsat: string;
    }[];
    expect(listed.map((s) => [s.name, s.origin, s.pricePerRequestMsat])).toEqual([
      ['seed', 'config-changed', '2000'],
      ['kept', 'api', '500'],
    ]);
    expect((await get('/v1/models')).status).toBe(404);
    const stats = await admin('GET', '/v1/proxy/services/seed/stats');
    expect(stats.body['totals']).toMatchObject({ paidRequests: 2, revenueMsat: '4000' });

    // A seeded service removed stays removed at the next start (the file is the seed only).
    expect((await admin('DELETE', '/v1/proxy/services/seed')).status).toBe(200);
    expect((await get('/health')).status).toBe(404);
    await s.stop();
    await s.start();
    expect(
      ((await admin('GET', '/v1/proxy/services')).body['services'] as { name: string }[]).map((s) => s.name),
    ).toEqual(['kept']);
  });
});
