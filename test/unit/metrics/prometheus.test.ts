import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { GatewayMetrics } from '../../../src/metrics/prometheus.js';
import { openDatabase } from '../../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../../src/storage/level-ledger-store.js';

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

describe('ledger batch metrics', () => {
  it('times each staged batch of the LevelDB ledger store once, with its number of writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coulomb-metrics-'));
    const db = await openDatabase(dir);
    try {
      const m = new GatewayMetrics();
      const ledger = await Ledger.open(m.instrumentStore(new LevelLedgerStore(db)));
      ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
      ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
      await ledger.indexKeys(); // the one-off background writes of a new ledger, done first
      await ledger.flush();
      const before = await m.text();
      const batches = (text: string): number =>
        Number(/^coulomb_ledger_batch_writes_count (\d+)$/m.exec(text)?.[1] ?? 'NaN');
      const sum = (text: string): number =>
        Number(/^coulomb_ledger_batch_writes_sum (\d+)$/m.exec(text)?.[1] ?? 'NaN');
      await ledger.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(5), code: 'c' })
        .durable;
      const after = await m.text();
      expect(batches(after) - batches(before)).toBe(1);
      // the transfer, its journal entry and its two accounts
      expect(sum(after) - sum(before)).toBe(4);
      expect(after).toContain('coulomb_ledger_batch_duration_seconds_count');
      await ledger.close();
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
