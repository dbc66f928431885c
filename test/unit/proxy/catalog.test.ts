import { describe, expect, it } from 'vitest';
import { ServiceCatalog } from '../../../src/proxy/catalog.js';
import { parseProxyConfig, type ServiceConfig } from '../../../src/proxy/config.js';
import { MemoryRecords } from '../../support/memory-records.js';

const svc = (name: string, extra: Partial<ServiceConfig> = {}): ServiceConfig => ({
  name,
  pathPrefix: `/${name}/`,
  upstream: 'http://127.0.0.1:9',
  mode: 'paid',
  pricePerRequestMsat: '10',
  creditMsat: '1000',
  lifetimeSeconds: 60,
  ...extra,
});
const seed = () => parseProxyConfig({ services: [svc('a'), svc('b')] }).services;

describe('ServiceCatalog', () => {
  it('applies the persisted changes over the seed at open', async () => {
    const store = new MemoryRecords();
    const c = await ServiceCatalog.open(store, seed());
    await c.add(svc('z'));
    await c.replace('a', svc('a', { pricePerRequestMsat: '99' }));
    await c.remove('b');
    expect(c.current().map((s) => s.name)).toEqual(['a', 'z']);
    const again = await ServiceCatalog.open(store, seed());
    expect(again.list().map((e) => [e.service.name, e.origin, e.service.pricePerRequest])).toEqual([
      ['a', 'config-changed', 99n],
      ['z', 'api', 10n],
    ]);
  });

  it('a catalog following a shared store takes another instance’s changes, and only those', async () => {
    const store = new MemoryRecords();
    const here = await ServiceCatalog.open(store, seed());
    const there = await ServiceCatalog.open(store, seed());
    const before = here.current();
    await here.refresh();
    // Nothing changed: the same services, not recompiled copies.
    expect(here.current()).toBe(before);
    await there.add(svc('z'));
    await there.replace('a', svc('a', { pricePerRequestMsat: '99' }));
    await there.remove('b');
    expect(here.current().map((s) => s.name)).toEqual(['a', 'b']);
    await here.refresh();
    expect(here.list().map((e) => [e.service.name, e.origin, e.service.pricePerRequest])).toEqual([
      ['a', 'config-changed', 99n],
      ['z', 'api', 10n],
    ]);
  });

  it('refuses duplicates, unknown names, and services the proxy could not serve', async () => {
    const c = await ServiceCatalog.open(new MemoryRecords(), seed());
    await expect(c.add(svc('a'))).rejects.toMatchObject({ code: 'SERVICE_EXISTS', status: 409 });
    await expect(c.remove('nope')).rejects.toMatchObject({ code: 'SERVICE_NOT_FOUND', status: 404 });
    await expect(c.replace('a', svc('b'))).rejects.toMatchObject({ code: 'INVALID_SERVICE' });
    await expect(c.add(svc('x', { pricePerRequestMsat: undefined }))).rejects.toMatchObject({
      code: 'INVALID_SERVICE',
      status: 400,
    });
    await expect(c.add(svc('y', { hostRegexp: '(' }))).rejects.toMatchObject({ code: 'INVALID_SERVICE' });
    expect(c.current().map((s) => s.name)).toEqual(['a', 'b']);
  });

  it('matches in one order live and after a restart: the most specific path prefix first', async () => {
    const store = new MemoryRecords();
    const file = parseProxyConfig({
      services: [svc('root', { pathPrefix: '/' }), svc('a'), svc('b', { pathPrefix: '/a/b/' })],
    }).services;
    const c = await ServiceCatalog.open(store, file);
    await c.add(svc('zcatch', { pathPrefix: '/' }));
    await c.add(svc('maps', { pathPrefix: '/maps/' }));
    await c.add(svc('hosted', { pathPrefix: '/maps/', hostRegexp: '^tiles\\.' }));
    const expected = ['hosted', 'maps', 'b', 'a', 'root', 'zcatch'];
    expect(c.current().map((s) => s.name)).toEqual(expected);
    const again = await ServiceCatalog.open(store, file);
    expect(again.current().map((s) => s.name)).toEqual(expected);
    expect(again.list().map((e) => e.service.name)).toEqual(expected);
  });
});
