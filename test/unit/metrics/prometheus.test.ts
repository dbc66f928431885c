import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { GatewayMetrics } from '../../../src/metrics/prometheus.js';

describe('proxy metrics labels stay bounded', () => {
  it('drops the series of removed services and groups unknown status codes by class', async () => {
    const m = new GatewayMetrics();
    let live = ['kept', 'gone'];
    const hooks = m.proxyHooks(() => live);
    for (const service of ['kept', 'gone']) {
      hooks.answered!({ service, status: 200, seconds: 0.01, paid: true });
      hooks.challenged!(service);
      hooks.charged!(service, msat(10n));
    }
    hooks.answered!({ service: 'kept', status: 418, seconds: 0.01, paid: false });
    hooks.answered!({ service: 'kept', status: 599, seconds: 0.01, paid: false });
    expect(await m.registry.metrics()).toContain('service="gone"');
    live = ['kept'];
    const text = await m.registry.metrics();
    expect(text).not.toContain('service="gone"');
    expect(text).toContain('coulomb_proxy_requests_total{service="kept",status_code="200"} 1');
    expect(text).toContain('coulomb_proxy_requests_total{service="kept",status_code="4xx"} 1');
    expect(text).toContain('coulomb_proxy_requests_total{service="kept",status_code="5xx"} 1');
    expect(text).not.toContain('status_code="418"');
    expect(text).toContain('coulomb_l402_revenue_msat_total{service="kept"} 10');
  });
});
