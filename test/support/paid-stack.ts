import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULTS } from '../../src/config/load.js';
import { buildApp, type CoulombApp } from '../../src/http/app.js';
import { OperatorAuth } from '../../src/http/operator-auth.js';
import { ConsoleSessions } from '../../src/http/console-session.js';
import type { AccountServices } from '../../src/http/routes/accounts.js';
import type { LndBackend } from '../../src/lightning/lnd/lnd-backend.js';
import {
  openAccounts,
  openPaidServices,
  startL402Proxy,
  type PaidServices,
  type ProxyHandle,
} from '../../src/main.js';
import type { GatewayMetrics } from '../../src/metrics/prometheus.js';
import { startUpstreamProcess } from './openai-upstream.js';
import { backendFor } from './regtest.js';

const log = pino({ level: 'silent' });

/**
 * The accounts, the L402 proxy with its live service catalog (seeded by a config file of the
 * given services, in front of the sample upstream) and the API app, on regtest alice, in process.
 */
export class PaidStack {
  alice!: LndBackend;
  upstream!: Awaited<ReturnType<typeof startUpstreamProcess>>;
  accounts!: { services: AccountServices; close(): Promise<void> };
  paid!: PaidServices;
  proxy!: ProxyHandle;
  api!: CoulombApp;
  private config!: typeof DEFAULTS;

  constructor(
    private readonly o: {
      operatorKey: string;
      seed: (upstreamUrl: string) => object[];
      metrics?: GatewayMetrics;
      scrapeToken?: string;
      /** Console sessions and the console built in this directory (at /console). */
      consoleDir?: string;
      /** The proxy's clock (unix ms). */
      now?: () => number;
    },
  ) {}

  async open(): Promise<void> {
    const m = this.o.metrics;
    this.alice = m ? m.instrumentBackend(await backendFor('alice')) : await backendFor('alice');
    this.upstream = await startUpstreamProcess(2);
    const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-paid-'));
    const file = join(dataDir, 'proxy.json');
    writeFileSync(file, JSON.stringify({ services: this.o.seed(this.upstream.url) }));
    this.config = {
      ...DEFAULTS,
      dataDir,
      proxy: { enabled: true, host: '127.0.0.1', port: 0, samplePort: 0, configFile: file },
    };
    this.accounts = await openAccounts(this.config, this.alice, log, m ? { metrics: m } : {});
    if (m) {
      m.watchEvents(this.accounts.services.events);
      m.watchLnd(this.alice);
    }
    await this.start();
  }

  /** Starts the catalog, the proxy and the app (again, after `stop`: a restart on the same store). */
  async start(): Promise<void> {
    const m = this.o.metrics;
    this.paid = await openPaidServices(this.config, this.accounts.services, log);
    this.proxy = await startL402Proxy(
      this.config,
      this.accounts.services,
      this.alice,
      log,
      this.paid,
      m?.proxyHooks(),
      this.o.now,
    );
    this.api = await buildApp({
      backend: this.alice,
      operatorAuth: OperatorAuth.fromKey(this.o.operatorKey),
      accounts: this.accounts.services,
      paidServices: this.paid,
      ...(this.o.consoleDir !== undefined
        ? { consoleSessions: new ConsoleSessions(), consoleDir: this.o.consoleDir }
        : {}),
      ...(m
        ? {
            metrics: {
              metrics: m,
              ...(this.o.scrapeToken ? { scrapeToken: OperatorAuth.fromKey(this.o.scrapeToken) } : {}),
            },
          }
        : {}),
    });
  }

  /** A restart of the whole gateway on the same data directory: the ledger closed and opened again. */
  async reopen(): Promise<void> {
    await this.stop();
    await this.accounts.close();
    const m = this.o.metrics;
    this.accounts = await openAccounts(this.config, this.alice, log, m ? { metrics: m } : {});
    await this.start();
  }

  async stop(): Promise<void> {
    await this.api?.close();
    await this.proxy?.close();
    await this.paid?.close();
  }

  async close(): Promise<void> {
    await this.stop();
    await this.accounts?.close();
    await this.upstream?.stop();
    await this.alice?.close();
  }
}
