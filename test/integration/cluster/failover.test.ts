import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { createLogger } from '../../../src/logger.js';
import { openAccounts } from '../../../src/main.js';
import type { AccountEvent } from '../../../src/payments/types.js';
import {
  createTestDatabase,
  gatewayDatabase,
  startPostgres,
  type RunningPostgres,
} from '../../support/postgres.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';

/**
 * Two gateway instances (every service of the composition root) on one PostgreSQL and one real
 * LND (regtest alice): the elected one alone subscribes to LND's invoices; when its database
 * session dies it stops at once, the other takes over within 10 s, resumes from the cursor in the
 * database and credits an invoice paid meanwhile, and every invoice is credited exactly once;
 * a client of the follower hears the leader's credit (the event relay).
 */
type Instance = Awaited<ReturnType<typeof openAccounts>>;
const TAKEOVER_DEADLINE_MS = 10_000;

describe('leader failover on regtest (two instances, one PostgreSQL, one LND)', () => {
  let server: RunningPostgres;
  let url: string;
  let admin: Sql;
  let db: ReturnType<typeof gatewayDatabase>;
  let dataDir: string;
  const backends: LndBackend[] = [];
  const instances: Instance[] = [];
  const fatal: unknown[] = [];

  const start = async (): Promise<Instance> => {
    const backend = await backendFor('alice');
    backends.push(backend);
    const instance = await openAccounts(
      { ...DEFAULTS, dataDir, databaseUrl: url },
      backend,
      createLogger('silent'),
      {
        leaderPollMs: 500,
        onFatal: (err) => fatal.push(err),
      },
    );
    instances.push(instance);
    return instance;
  };
  const leads = (i: Instance): boolean => i.leadership.active.includes('LND invoice subscription');
  beforeAll(async () => {
    // Under COULOMB_TEST_PG_DIR when set (as the postgres project's server), else a temporary one.
    const pgDir = process.env['COULOMB_TEST_PG_DIR'];
    server = await startPostgres({
      dir: pgDir ? join(pgDir, 'failover') : join(tmpdir(), `coulomb-pg-failover-${process.pid}`),
    });
    url = await createTestDatabase(server.url, 'failover');
    admin = postgres(url, { max: 1, onnotice: false });
    db = gatewayDatabase(admin);
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-failover-'));
  });
  afterAll(async () => {
    for (const i of instances) await i.close().catch(() => undefined);
    for (const b of backends) await b.close().catch(() => undefined);
    await admin?.end();
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('the other instance takes over within 10 s and credits each paid invoice once', async () => {
    const a = await start();
    await eventually(() => (leads(a) ? true : undefined), 10_000, 'a leads');
    const b = await start();
    await a.services.ledger.ensure({ accounts: ['agent-f'] });
    await a.services.ledger.createAccount({ id: 'agent-f', kind: 'agent', name: 'agent-f' }).durable;
    const bob = await rawLnd('bob');

    // Issued by the follower, credited by the leader's subscription; a client of the follower
    // listening to the account hears it (the event relay), once the leader knows it listens.
    const heard: AccountEvent[] = [];
    b.services.events.subscribe('agent-f', (e) => heard.push(e), { everyInstance: true });
    await eventually(
      () => a.services.events.wants('agent-f', 'balance') || undefined,
      10_000,
      'a hears of b',
    );
    const first = await b.services.payments.createInvoice('agent-f', { amountMsat: msat(21_000_000) });
    await pay({ lnd: bob, request: first.request });
    await eventually(
      async () => ((await db.invoiceCredits(first.paymentHash)) === 1 ? true : undefined),
      30_000,
      'credit 1',
    );
    expect(leads(b)).toBe(false);
    const settled = (e: AccountEvent): boolean =>
      e.type === 'invoice' && e.invoice.paymentHash === first.paymentHash && e.invoice.state === 'settled';
    await eventually(() => heard.some(settled) || undefined, 10_000, "the credit on b's bus");
    expect(heard.filter(settled)).toHaveLength(1);

    // The leader's session dies: it stops its duties; an invoice is paid before anyone took over.
    const second = await a.services.payments.createInvoice('agent-f', { amountMsat: msat(34_000_000) });
    await db.terminateLeader();
    const killedAt = Date.now();
    await pay({ lnd: bob, request: second.request });
    await eventually(() => (leads(b) ? true : undefined), TAKEOVER_DEADLINE_MS, 'b takes over');
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_DEADLINE_MS);
    expect(leads(a)).toBe(false);

    // The new leader resumed from the cursor in the database: the payment made meanwhile is
    // credited, and a new one too; nothing twice.
    const third = await b.services.payments.createInvoice('agent-f', { amountMsat: msat(55_000_000) });
    await pay({ lnd: bob, request: third.request });
    await eventually(
      async () => ((await db.balance('agent-f')) === 110_000_000n ? true : undefined),
      30_000,
      'credits 2 and 3',
    );
    for (const inv of [first, second, third]) expect(await db.invoiceCredits(inv.paymentHash)).toBe(1);
    const [cursor] = await admin<{ settle_index: string }[]>`
      SELECT settle_index FROM duty_cursors WHERE name = 'lightning/invoice-cursor'`;
    expect(Number(cursor?.settle_index)).toBeGreaterThan(0);
    expect(fatal).toEqual([]);
  });
});
