import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { DEFAULTS } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { msat } from '../../src/domain/msat.js';
import { OPERATOR_ACCOUNT } from '../../src/ledger/system-accounts.js';
import type { AccountKind } from '../../src/ledger/types.js';
import type { LndBackend } from '../../src/lightning/lnd/lnd-backend.js';
import { createLogger } from '../../src/logger.js';
import { openAccounts, type FeatureOptions } from '../../src/main.js';
import type { Policy } from '../../src/policy/types.js';
import { createTestDatabase, gatewayDatabase, startPostgres, type RunningPostgres } from './postgres.js';
import { backendFor } from './regtest.js';

export type ClusterInstance = Awaited<ReturnType<typeof openAccounts>>;

/**
 * Gateway instances (every service of the composition root, `openAccounts`) sharing one
 * PostgreSQL server of their own and regtest alice's LND, as the cluster tests run them. A
 * storage failure of any instance is collected in `fatal` (tests expect it empty) instead of
 * exiting.
 */
export interface RegtestCluster {
  url: string;
  /** A connection of the test's own to the gateway database, and what tests read through it. */
  admin: Sql;
  db: ReturnType<typeof gatewayDatabase>;
  fatal: unknown[];
  instances: ClusterInstance[];
  /** Starts another instance (config and options merged over the cluster's). */
  start(config?: Partial<Config>, options?: FeatureOptions): Promise<ClusterInstance>;
  /** Creates an account through an instance, funds it from the operator account and sets its policy. */
  account(
    on: ClusterInstance,
    id: string,
    fundMsat: bigint,
    policy: Policy,
    kind?: Exclude<AccountKind, 'system' | 'operator'>,
  ): Promise<void>;
  /** Closes every instance, its LND connection and the PostgreSQL server; removes the data. */
  close(): Promise<void>;
}

export async function regtestCluster(name: string): Promise<RegtestCluster> {
  const server: RunningPostgres = await startPostgres({
    dir: join(tmpdir(), `coulomb-pg-${name}-${process.pid}`),
  });
  const url = await createTestDatabase(server.url, name.replace(/[^a-z0-9]/g, '_'));
  const admin = postgres(url, { max: 1, onnotice: false });
  const dataDir = mkdtempSync(join(tmpdir(), `coulomb-${name}-`));
  const backends: LndBackend[] = [];
  const instances: ClusterInstance[] = [];
  const fatal: unknown[] = [];
  return {
    url,
    admin,
    db: gatewayDatabase(admin),
    fatal,
    instances,
    async start(config = {}, options = {}) {
      const backend = await backendFor('alice');
      backends.push(backend);
      const instance = await openAccounts(
        { ...DEFAULTS, dataDir, databaseUrl: url, ...config },
        backend,
        createLogger('silent'),
        { leaderPollMs: 500, onFatal: (err) => fatal.push(err), ...options },
      );
      instances.push(instance);
      return instance;
    },
    async account(on, id, fundMsat, policy, kind = 'agent') {
      const ledger = on.services.ledger;
      // A shared store remembers no absence: the chosen id is looked up before it is created.
      await ledger.ensure({ accounts: [id, OPERATOR_ACCOUNT] });
      await ledger.createAccount({ id, kind, name: id }).durable;
      if (fundMsat > 0n)
        await ledger.transfer({
          debitAccountId: OPERATOR_ACCOUNT,
          creditAccountId: id,
          amount: msat(fundMsat),
          code: 'funding',
        }).durable;
      await ledger.ensure({ spend: [id] });
      await on.services.policies.set(id, policy);
    },
    async close() {
      for (const i of instances) await i.close().catch(() => undefined);
      for (const b of backends) await b.close().catch(() => undefined);
      await admin.end();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
