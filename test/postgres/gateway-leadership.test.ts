import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { envOverrides, loadConfig } from '../../src/config/load.js';
import { msat } from '../../src/domain/msat.js';
import type { InvoiceSubscriptionOptions } from '../../src/lightning/backend.js';
import type { Invoice } from '../../src/lightning/types.js';
import type { AccountEvent } from '../../src/payments/types.js';
import { createLogger } from '../../src/logger.js';
import { openAccounts } from '../../src/main.js';
import { FakeLightning } from '../support/fake-lightning.js';
import { createTestDatabase, gatewayDatabase } from '../support/postgres.js';
import { eventually } from '../support/regtest.js';

/**
 * Two gateway instances (the composition root's `openAccounts`, every service) on one PostgreSQL
 * database and one (fake) LND: the singleton duties run on the elected one only, move to the
 * other when the leader's session dies, and an invoice is credited exactly once whichever
 * instance issued it, whichever leads, and even when two instances handle its settlement at once;
 * a client of the follower hears what the leader credited (the event relay).
 */

/** One LND shared by the instances; each instance's view records the invoice subscriptions it opens. */
class SharedLnd extends FakeLightning {
  readonly subscriptions: { instance: string; options: InvoiceSubscriptionOptions; open: boolean }[] = [];

  viewFor(instance: string): FakeLightning {
    const view = Object.create(this) as FakeLightning;
    view.subscribeInvoices = (options: InvoiceSubscriptionOptions) => {
      const sub = { instance, options, open: true };
      this.subscriptions.push(sub);
      return { close: () => void (sub.open = false) };
    };
    return view;
  }

  /** The open subscriptions' instances. */
  openOn(): string[] {
    return this.subscriptions.filter((s) => s.open).map((s) => s.instance);
  }

  /** Delivers an update to the open subscription, as LND's stream does, and moves its cursor. */
  async deliver(invoice: Invoice): Promise<void> {
    const [sub, ...more] = this.subscriptions.filter((s) => s.open);
    expect(more).toEqual([]);
    await sub!.options.onInvoice(invoice);
    const cursor = await sub!.options.cursor.load();
    await sub!.options.cursor.save({
      addIndex: Math.max(cursor.addIndex, invoice.addIndex),
      settleIndex: Math.max(cursor.settleIndex, invoice.settleIndex),
    });
  }
}

type Instance = Awaited<ReturnType<typeof openAccounts>>;
const TAKEOVER_DEADLINE_MS = 10_000;

describe('two gateway instances on one PostgreSQL database and one LND', () => {
  let url: string;
  let admin: Sql;
  let db: ReturnType<typeof gatewayDatabase>;
  let dataDir: string;
  const lnd = new SharedLnd();
  const fatal: unknown[] = [];
  const open: Instance[] = [];

  const start = async (name: string): Promise<Instance> => {
    const config = loadConfig({
      env: envOverrides({ COULOMB_DATABASE_URL: url, COULOMB_DATA_DIR: dataDir }),
    });
    const instance = await openAccounts(config, lnd.viewFor(name), createLogger('silent'), {
      leaderPollMs: 200,
      onFatal: (err) => fatal.push(err),
    });
    open.push(instance);
    return instance;
  };

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'gateway_leader');
    admin = postgres(url, { max: 1, onnotice: false });
    db = gatewayDatabase(admin);
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-pgleader-'));
  });
  afterAll(async () => {
    for (const i of open) await i.close().catch(() => undefined);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('runs the duties on one instance, fails over within 10 s, and credits each invoice once', async () => {
    const a = await start('a');
    await eventually(() => (a.leadership.active.length > 0 ? true : undefined), 5000, 'a leads');
    const b = await start('b');
    // b serves requests but runs no duty.
    await new Promise((r) => setTimeout(r, 600));
    expect(b.leadership.active).toEqual([]);
    expect(a.leadership.active).toContain('LND invoice subscription');
    expect(a.leadership.active).toContain('stream scheduler');
    expect(lnd.openOn()).toEqual(['a']);

    await a.services.ledger.ensure({ accounts: ['alice'] });
    await a.services.ledger.createAccount({ id: 'alice', kind: 'agent', name: 'alice' }).durable;
    // Issued by the follower, settled in LND, credited by the leader's subscription.
    const first = await b.services.payments.createInvoice('alice', { amountMsat: msat(5000) });
    // A client of the follower listens to alice: the leader learns of it through the event relay.
    const heard: AccountEvent[] = [];
    const credited = new Promise<void>((resolve) =>
      b.services.events.subscribe(
        'alice',
        (e) => {
          heard.push(e);
          if (e.type === 'balance' && heard.some((h) => h.type === 'invoice')) resolve();
          if (e.type === 'invoice' && heard.some((h) => h.type === 'balance')) resolve();
        },
        { everyInstance: true },
      ),
    );
    await eventually(() => a.services.events.wants('alice', 'balance') || undefined, 5000, 'a to hear of b');
    await lnd.deliver(lnd.settle(first.paymentHash));
    expect(await db.balance('alice')).toBe(5000n);
    // What the leader did reaches the follower's client: the invoice settled, alice's balance.
    await credited;
    expect(heard).toContainEqual(
      expect.objectContaining({
        type: 'invoice',
        invoice: expect.objectContaining({
          paymentHash: first.paymentHash,
          state: 'settled',
          amountMsat: 5000n,
        }),
      }),
    );
    expect(heard).toContainEqual({
      type: 'balance',
      accountId: 'alice',
      balanceMsat: '5000',
      availableMsat: '5000',
    });

    await db.terminateLeader();
    const killedAt = Date.now();
    await eventually(
      () => (b.leadership.active.includes('LND invoice subscription') ? true : undefined),
      TAKEOVER_DEADLINE_MS,
      'b takes over',
    );
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_DEADLINE_MS);
    expect(a.leadership.active).toEqual([]);
    expect(lnd.openOn()).toEqual(['b']);
    // The new leader resumes from the persisted cursor.
    const cursor = await lnd.subscriptions.at(-1)!.options.cursor.load();
    expect(cursor.settleIndex).toBe(1);

    // A settlement delivered again (LND's catch-up) changes nothing; a new one is credited once.
    await lnd.deliver(await lnd.lookupInvoice(first.paymentHash));
    const second = await a.services.payments.createInvoice('alice', { amountMsat: msat(7000) });
    await lnd.deliver(lnd.settle(second.paymentHash));
    expect(await db.balance('alice')).toBe(12_000n);
    expect(await db.invoiceCredits(first.paymentHash)).toBe(1);
    expect(await db.invoiceCredits(second.paymentHash)).toBe(1);
    expect(fatal).toEqual([]);
  });

  it('two instances handling one settlement at once (leaders overlapping) credit it once', async () => {
    const [a, b] = open as [Instance, Instance];
    await a.services.ledger.ensure({ accounts: ['carol'] });
    await a.services.ledger.createAccount({ id: 'carol', kind: 'agent', name: 'carol' }).durable;
    for (let i = 0; i < 5; i++) {
      const rec = await a.services.payments.createInvoice('carol', { amountMsat: msat(1000) });
      // b knows the invoice as open too (it read the record before the settlement).
      expect((await b.services.payments.getInvoice(rec.paymentHash))?.state).toBe('open');
      const settled = lnd.settle(rec.paymentHash);
      await Promise.allSettled([
        a.services.payments.onInvoice(settled),
        b.services.payments.onInvoice(settled),
      ]);
      expect(await db.invoiceCredits(rec.paymentHash)).toBe(1);
      if (fatal.length > 0) break;
    }
    // When both batches raced, the database refused the second one's transfer under the same key
    // (the refused instance stops, as after any storage failure: its memory was ahead).
    for (const err of fatal) expect(err).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    // Every invoice credited once, whatever each instance's memory said.
    const [row] = await admin<{ n: number }[]>`
      SELECT count(*)::int AS n FROM ledger_transfers WHERE credit_account_id = 'carol'`;
    expect(await db.balance('carol')).toBe(BigInt(row!.n) * 1000n);
  });
});
