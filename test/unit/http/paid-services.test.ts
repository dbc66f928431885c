import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Revocations } from '../../../src/l402/revocations.js';
import { ServiceCatalog } from '../../../src/proxy/catalog.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { ServiceStats } from '../../../src/proxy/stats.js';
import { MemoryRecords } from '../../support/memory-records.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'paid-services-unit-operator-key-0123456789';
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let catalog: ServiceCatalog;

/** Side records whose writes wait while `hold` is set (a change being written takes a while). */
class HeldRecords extends MemoryRecords {
  hold: Promise<void> | undefined;
  override async putRecords(records: { key: string; value: string | null }[]): Promise<void> {
    await this.hold;
    return super.putRecords(records);
  }
}
const store = new HeldRecords();

const svc = (name: string, extra: object = {}) => ({
  name,
  pathPrefix: `/${name}/`,
  upstream: 'http://127.0.0.1:9',
  mode: 'paid',
  pricePerRequestMsat: '10',
  creditMsat: '1000',
  lifetimeSeconds: 60,
  ...extra,
});

beforeAll(async () => {
  f = await paymentsFixture();
  const authority = new L402Authority(Buffer.alloc(32, 5));
  const revocations = new L402Revocations(f.ledger, authority);
  await revocations.load();
  catalog = await ServiceCatalog.open(store, parseProxyConfig({ services: [svc('seed')] }).services);
  const stats = new ServiceStats(new MemoryRecords());
  app = await accountsApp(f, OP, { l402: { authority, revocations } }, { catalog, stats });
});
afterAll(async () => {
  f.service.stop();
  await app.close();
});

const admin = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, payload?: object) => {
  const res = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${OP}` },
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>(), text: res.body };
};
const code = (r: { body: Record<string, unknown> }) =>
  (r.body['error'] as { code?: string } | undefined)?.code;

describe('paid services admin API: bad input is 400 INVALID_SERVICE', () => {
  it('refuses upstream URLs that do not parse, on POST, PUT and PATCH', async () => {
    for (const upstream of ['http://', 'http://[', 'https://a b']) {
      const post = await admin('POST', '/v1/proxy/services', svc('bad', { upstream }));
      expect([post.status, code(post)]).toEqual([400, 'INVALID_SERVICE']);
      const put = await admin('PUT', '/v1/proxy/services/seed', svc('seed', { upstream }));
      expect([put.status, code(put)]).toEqual([400, 'INVALID_SERVICE']);
      const patch = await admin('PATCH', '/v1/proxy/services/seed', { upstream });
      expect([patch.status, code(patch)]).toEqual([400, 'INVALID_SERVICE']);
    }
    expect(catalog.current().map((s) => [s.name, s.upstream.href])).toEqual([
      ['seed', 'http://127.0.0.1:9/'],
    ]);
  });

  it('refuses upstream headers that could never be sent', async () => {
    for (const headers of [
      { 'bad header\n': 'v' },
      { 'x-ok': 'v\r\nx: y' },
      { 'x-ok': 'v\u0000' },
      { '': 'v' },
      { 'x(y)': 'v' },
    ]) {
      const post = await admin('POST', '/v1/proxy/services', svc('hdr', { headers }));
      expect([post.status, code(post)]).toEqual([400, 'INVALID_SERVICE']);
      const patch = await admin('PATCH', '/v1/proxy/services/seed', { headers });
      expect([patch.status, code(patch)]).toEqual([400, 'INVALID_SERVICE']);
    }
    const ok = await admin(
      'POST',
      '/v1/proxy/services',
      svc('hdr', { headers: { 'X-Api_Key.1': 'a b\tc' } }),
    );
    expect(ok.status).toBe(201);
  });
});

describe('paid services admin API: secrets are never shown', () => {
  it('redacts the credentials of an upstream URL and says they are set', async () => {
    const upstream = 'https://user:s3cret@api.example:8443/v1?k=1';
    const post = await admin('POST', '/v1/proxy/services', svc('creds', { upstream }));
    expect(post.status).toBe(201);
    expect(post.body).toMatchObject({
      upstream: 'https://api.example:8443/v1?k=1',
      upstreamCredentials: true,
    });
    for (const r of [
      post,
      await admin('GET', '/v1/proxy/services/creds'),
      await admin('GET', '/v1/proxy/services'),
    ])
      expect(r.text).not.toMatch(/s3cret|user/);
    const patched = await admin('PATCH', '/v1/proxy/services/creds', { pricePerRequestMsat: '20' });
    expect(patched.text).not.toContain('s3cret');
    // The credentials stay in force: only their display is withheld.
    expect(catalog.get('creds')!.service.upstream.password).toBe('s3cret');
    const plain = await admin('GET', '/v1/proxy/services/seed');
    expect(plain.body).toMatchObject({ upstream: 'http://127.0.0.1:9', upstreamCredentials: false });
  });
});

describe('paid services admin API: concurrent changes', () => {
  it('applies two PATCHes made at once, neither lost', async () => {
    let release = () => undefined as void;
    store.hold = new Promise((r) => (release = r));
    // The first change's write waits until the second PATCH's handler has asked the catalog.
    let calls = 0;
    const counted = <A extends unknown[], R>(method: (...a: A) => R) =>
      function (this: ServiceCatalog, ...a: A): R {
        if (++calls === 2) release();
        return method.apply(this, a);
      };
    const spied = catalog as unknown as Record<'require' | 'patch', (...a: unknown[]) => unknown>;
    spied.require = counted(spied.require);
    if (spied.patch) spied.patch = counted(spied.patch);
    const both = Promise.all([
      admin('PATCH', '/v1/proxy/services/seed', { pricePerRequestMsat: '20' }),
      admin('PATCH', '/v1/proxy/services/seed', { creditMsat: '5000' }),
    ]);
    const [price, credit] = await both;
    store.hold = undefined;
    delete (spied as Partial<typeof spied>).require;
    delete (spied as Partial<typeof spied>).patch;
    expect([price.status, credit.status]).toEqual([200, 200]);
    expect(credit.body).toMatchObject({ pricePerRequestMsat: '20', creditMsat: '5000' });
    const now = await admin('GET', '/v1/proxy/services/seed');
    expect(now.body).toMatchObject({ pricePerRequestMsat: '20', creditMsat: '5000' });
  });
});
