import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LightningBackend } from '../lightning/backend.js';
import type { LedgerStore } from '../ledger/store.js';
import type { EventBus } from '../payments/events.js';
import type { ProxyHooks } from '../proxy/server.js';

/** The proxy's status codes kept as they are; the others are counted by class (`4xx`, `5xx`). */
export const PROXY_STATUS_CODES = [
  200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 402, 403, 404, 405, 409, 413, 422, 429, 500,
  502, 503, 504,
] as const;
const KNOWN_STATUS = new Set<number>(PROXY_STATUS_CODES);
const STATUS_LABELS = [...PROXY_STATUS_CODES.map(String), ...['1xx', '2xx', '3xx', '4xx', '5xx', 'other']];
function statusLabel(status: number): string {
  if (KNOWN_STATUS.has(status)) return String(status);
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/**
 * The gateway's Prometheus metrics (prom-client), in one registry. Feature modules know nothing
 * of it: the composition root wires them through what they already offer (the proxy's hooks, the
 * event bus, the ledger store's commits, the Lightning backend's calls). Names follow the
 * Prometheus conventions: `coulomb_` prefix, units in the name (`_seconds`, `_msat`), `_total`
 * for counters; labels are bounded (a route is its pattern, a service one of the configured).
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly httpRequests = new Counter({
    name: 'coulomb_http_requests_total',
    help: 'HTTP API requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry],
  });
  private readonly httpDuration = new Histogram({
    name: 'coulomb_http_request_duration_seconds',
    help: 'HTTP API request durations, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly proxyRequests = new Counter({
    name: 'coulomb_proxy_requests_total',
    help: 'L402 proxy requests answered, by service and status code',
    labelNames: ['service', 'status_code'] as const,
    registers: [this.registry],
  });
  private readonly proxyDuration = new Histogram({
    name: 'coulomb_proxy_request_duration_seconds',
    help: 'L402 proxy request durations (to the end of the response), by service and status code',
    labelNames: ['service', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly challengesIssued = new Counter({
    name: 'coulomb_l402_challenges_issued_total',
    help: 'L402 challenges (402 answers, each with a new invoice), by service',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  private readonly challengesPaid = new Counter({
    name: 'coulomb_l402_challenges_paid_total',
    help: 'L402 credential invoices (challenges and top-ups) settled',
    registers: [this.registry],
  });
  private readonly revenue = new Counter({
    name: 'coulomb_l402_revenue_msat_total',
    help: 'Final charges of paid proxy requests, by service (msat)',
    labelNames: ['service'] as const,
    registers: [this.registry],
  });
  private readonly payments = new Counter({
    name: 'coulomb_payments_total',
    help: 'Outbound payment updates, by the status reached',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly paymentFees = new Counter({
    name: 'coulomb_payment_fees_msat_total',
    help: 'Routing fees of succeeded outbound payments (msat)',
    registers: [this.registry],
  });
  private readonly batchWrites = new Histogram({
    name: 'coulomb_ledger_batch_writes',
    help: 'Writes per ledger group-commit batch',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
    registers: [this.registry],
  });
  private readonly batchDuration = new Histogram({
    name: 'coulomb_ledger_batch_duration_seconds',
    help: 'Duration of a ledger group-commit batch write (to fsync)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly lndUp = new Gauge({
    name: 'coulomb_lnd_connected',
    help: '1 while LND answers, 0 while it does not',
    registers: [this.registry],
  });
  private readonly lndCalls = new Histogram({
    name: 'coulomb_lnd_call_duration_seconds',
    help: 'LND call durations, by backend method and outcome',
    labelNames: ['method', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly tickLag = new Histogram({
    name: 'coulomb_stream_tick_lag_seconds',
    help: "How late the streams' 1 s tick started after its grid time",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly tickDuration = new Histogram({
    name: 'coulomb_stream_tick_duration_seconds',
    help: "Time the streams' tick took over every local stream",
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  private readonly detach: (() => void)[] = [];

  constructor() {
    // Process metrics, event-loop lag included (`nodejs_eventloop_lag_seconds`, its percentiles).
    collectDefaultMetrics({ register: this.registry });
  }

  /** One answered HTTP request; `route` is the route's pattern (`/v1/accounts/:id`), never the URL. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status_code: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  /** One tick of the streams' scheduler (clock milliseconds). */
  streamTick(t: { scheduledAt: number; startedAt: number; finishedAt: number }): void {
    this.tickLag.observe(Math.max(0, t.startedAt - t.scheduledAt) / 1000);
    this.tickDuration.observe((t.finishedAt - t.startedAt) / 1000);
  }

  /**
   * The proxy's hooks that feed these metrics. With `live` (the names of the services served
   * now), each scrape first drops the series of the services removed since: the `service` label
   * stays bounded by the catalog however many services come and go. Upstream status codes
   * outside `PROXY_STATUS_CODES` are grouped by class (`5xx`).
   */
  proxyHooks(live?: () => Iterable<string>): ProxyHooks {
    const seen = new Set<string>();
    if (live) {
      // prom-client calls a metric's `collect` before each scrape reads it.
      const scraped = this.proxyRequests as Counter<'service' | 'status_code'> & { collect?: () => void };
      scraped.collect = () => {
        const names = new Set(live());
        for (const service of seen) if (!names.has(service)) this.dropService(service, seen);
      };
    }
    return {
      answered: (e) => {
        const labels = { service: e.service ?? 'none', status_code: statusLabel(e.status) };
        if (e.service) seen.add(e.service);
        this.proxyRequests.inc(labels);
        this.proxyDuration.observe(labels, e.seconds);
      },
      challenged: (service) => {
        seen.add(service);
        this.challengesIssued.inc({ service });
      },
      charged: (service, amount) => {
        seen.add(service);
        if (amount > 0n) this.revenue.inc({ service }, Number(amount));
      },
    };
  }

  private dropService(service: string, seen: Set<string>): void {
    for (const status_code of STATUS_LABELS) {
      this.proxyRequests.remove({ service, status_code });
      this.proxyDuration.remove({ service, status_code });
    }
    this.challengesIssued.remove({ service });
    this.revenue.remove({ service });
    seen.delete(service);
  }

  /** Payments by status and their fees, and credential invoices paid, from the event bus. */
  watchEvents(bus: EventBus): void {
    this.detach.push(
      bus.subscribeAll(
        (accountId, event) => {
          if (event.type === 'payment') {
            this.payments.inc({ status: event.payment.status });
            if (event.payment.status === 'succeeded') this.paymentFees.inc(Number(event.payment.feeMsat));
          } else if (
            event.type === 'invoice' &&
            event.invoice.state === 'settled' &&
            accountId.startsWith('l402:')
          ) {
            this.challengesPaid.inc();
          }
        },
        ['payment', 'invoice'],
      ),
    );
  }

  /** LND's connection state, as the backend reports it. */
  watchLnd(backend: Pick<LightningBackend, 'connectionState' | 'onConnectionChange'>): void {
    this.lndUp.set(backend.connectionState === 'connected' ? 1 : 0);
    this.detach.push(backend.onConnectionChange((s) => this.lndUp.set(s === 'connected' ? 1 : 0)));
  }

  /** A gauge read at scrape time (devices connected, MQTT messages...). */
  gauge(name: string, help: string, read: () => number): void {
    new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** A counter read at scrape time from a running total kept elsewhere. */
  counter(name: string, help: string, read: () => number): void {
    let last = 0;
    new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        const now = read();
        if (now > last) this.inc(now - last);
        last = now;
      },
    });
  }

  /** The ledger store with each commit (one group-commit batch) timed and its writes counted. */
  instrumentStore<S extends LedgerStore>(store: S): S {
    const commit = store.commit.bind(store);
    store.commit = async (writes) => {
      const began = performance.now();
      await commit(writes);
      this.batchDuration.observe((performance.now() - began) / 1000);
      this.batchWrites.observe(writes.length);
    };
    const stage = store.stage?.bind(store);
    if (stage) {
      // A staged batch is timed from its write (staging happened as operations were queued).
      store.stage = () => {
        const batch = stage();
        const write = batch.write.bind(batch);
        batch.write = async () => {
          const began = performance.now();
          await write();
          this.batchDuration.observe((performance.now() - began) / 1000);
          this.batchWrites.observe(batch.size);
        };
        return batch;
      };
    }
    return store;
  }

  /** The backend with every call that returns a promise timed, by method and outcome. */
  instrumentBackend<B extends object>(backend: B): B {
    const calls = this.lndCalls;
    return new Proxy(backend, {
      get(target, prop, receiver) {
        const value: unknown = Reflect.get(target, prop);
        if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'close') return value;
        const fn = value as (...args: unknown[]) => unknown;
        return function (this: unknown, ...args: unknown[]) {
          const began = performance.now();
          const out = fn.apply(this === receiver ? target : this, args);
          if (!(out instanceof Promise)) return out;
          const done = (outcome: string) => () =>
            calls.observe({ method: prop, outcome }, (performance.now() - began) / 1000);
          out.then(done('ok'), done('error'));
          return out;
        };
      },
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  stop(): void {
    for (const d of this.detach.splice(0)) d();
    this.registry.clear();
  }
}
