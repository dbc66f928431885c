import { createInvoice } from 'ln-service';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { GatewayMetrics } from '../../../src/metrics/prometheus.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { PaidStack } from '../../support/paid-stack.js';
import { eventually, rawLnd } from '../../support/regtest.js';

const OPERATOR_KEY = 'metrics-integration-operator-key-0123456789';
const SCRAPE_TOKEN = 'metrics-integration-scrape-token-0123456789';
const metrics = new GatewayMetrics();
const p = new PaidStack({
  operatorKey: OPERATOR_KEY,
  scrapeToken: SCRAPE_TOKEN,
  metrics,
  seed: (upstream) => [
    {
      name: 'seed',
      pathPrefix: '/health',
      upstream,
      mode: 'paid',
      pricePerRequestMsat: '1000',
      creditMsat: '5000',
      lifetimeSeconds: 3600,
    },
  ],
});

beforeAll(() => p.open());
afterAll(async () => {
  await p.close();
  metrics.stop();
});

const scrape = async (token = SCRAPE_TOKEN) => {
  const res = await p.api.inject({
    method: 'GET',
    url: '/metrics',
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.statusCode, type: res.headers['content-type'], text: res.body };
};

/** The value of one sample line (name with its labels exactly as written), or undefined. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('/metrics on regtest', () => {
  it('opens with the operator key or the scrape token only; the token opens nothing else', async () => {
    expect((await p.api.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect((await scrape('not-the-token-0123456789012345678901')).status).toBe(401);
    const ok = await scrape();
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect((await scrape(OPERATOR_KEY)).status).toBe(200);
    const other = await p.api.inject({
      method: 'GET',
      url: '/v1/node',
      headers: { authorization: `Bearer ${SCRAPE_TOKEN}` },
    });
    expect(other.statusCode).toBe(401);
  });

  it('counts HTTP requests by route pattern, proxy requests and challenges, payments and fees, ledger batches, LND calls', async () => {
    const s = p.accounts.services;
    await s.ledger.createAccount({ id: 'metrics-agent', kind: 'agent', name: 'm' }).durable;
    await s.policies.set('metrics-agent', tierPolicy('L3'));
    await s.ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: 'metrics-agent',
      amount: msat(100_000_000n),
      code: 'funding',
    }).durable;
    for (const id of ['metrics-agent', 'unknown-one', 'unknown-two']) {
      await p.api.inject({
        method: 'GET',
        url: `/v1/accounts/${id}`,
        headers: { authorization: `Bearer ${OPERATOR_KEY}` },
      });
    }
    await p.api.inject({
      method: 'GET',
      url: '/no/such/route',
      headers: { authorization: `Bearer ${OPERATOR_KEY}` },
    });
    expect((await fetch(p.proxy.url + '/health')).status).toBe(402);
    const bill = await createInvoice({ lnd: await rawLnd('carol'), mtokens: '10000000', description: 'm' });
    const paid = await s.payments.pay('metrics-agent', { request: bill.request, maxFeeMsat: msat(100_000n) });
    expect(paid.status).toBe('succeeded');

    const { text } = await scrape();
    // Route patterns, never raw URLs: two unknown ids are one series.
    expect(
      sample(text, 'coulomb_http_requests_total{method="GET",route="/v1/accounts/:id",status_code="200"}'),
    ).toBe(1);
    expect(
      sample(text, 'coulomb_http_requests_total{method="GET",route="/v1/accounts/:id",status_code="404"}'),
    ).toBe(2);
    expect(
      sample(text, 'coulomb_http_requests_total{method="GET",route="unmatched",status_code="404"}'),
    ).toBe(1);
    expect(text).not.toContain('unknown-one');
    expect(
      sample(
        text,
        'coulomb_http_request_duration_seconds_count{method="GET",route="/v1/accounts/:id",status_code="404"}',
      ),
    ).toBe(2);
    expect(sample(text, 'coulomb_proxy_requests_total{service="seed",status_code="402"}')).toBe(1);
    expect(sample(text, 'coulomb_l402_challenges_issued_total{service="seed"}')).toBe(1);
    expect(sample(text, 'coulomb_payments_total{status="succeeded"}')).toBe(1);
    expect(sample(text, 'coulomb_payment_fees_msat_total')).toBe(Number(paid.feeMsat));
    expect(sample(text, 'coulomb_ledger_batch_duration_seconds_count')).toBeGreaterThan(0);
    expect(sample(text, 'coulomb_ledger_batch_writes_count')).toBeGreaterThan(0);
    expect(sample(text, 'coulomb_lnd_call_duration_seconds_count{method="createInvoice",outcome="ok"}')).toBe(
      1,
    );
    expect(sample(text, 'coulomb_lnd_connected')).toBe(1);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    // The streams' scheduler ticks every second, streams or not.
    await eventually(
      async () =>
        (sample((await scrape()).text, 'coulomb_stream_tick_lag_seconds_count') ?? 0) > 0 ? true : undefined,
      30_000,
      'a stream tick',
    );
    // Conventions: counters end in _total, durations are in seconds.
    for (const m of text.matchAll(/^# TYPE (coulomb_\S+) (\S+)$/gm)) {
      if (m[2] === 'counter') expect(m[1]).toMatch(/_total$/);
      if (m[1]!.includes('duration')) expect(m[1]).toMatch(/_seconds$/);
    }
  });
});
