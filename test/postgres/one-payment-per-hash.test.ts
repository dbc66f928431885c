import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { envOverrides, loadConfig } from '../../src/config/load.js';
import { msat } from '../../src/domain/msat.js';
import { OPERATOR_ACCOUNT } from '../../src/ledger/system-accounts.js';
import { createLogger } from '../../src/logger.js';
import { openAccounts } from '../../src/main.js';
import { tierPolicy } from '../../src/policy/tiers.js';
import { FakeLightning, fakeRequest } from '../support/fake-lightning.js';
import { createTestDatabase, gatewayDatabase } from '../support/postgres.js';

/**
 * One payment per payment hash across two instances of one PostgreSQL database. An invoice of one
 * account paid internally (by other accounts of the gateway) through both at once is settled once,
 * its account credited once, and every other attempt refused with ALREADY_PAID. An invoice of
 * another node paid through both at once reaches LND once (the database's claim on the hash),
 * the others are refused; an attempt that failed frees the hash for the next.
 */
type Instance = Awaited<ReturnType<typeof openAccounts>>;

describe('one payment per payment hash through two instances', () => {
  let url: string;
  let admin: Sql;
  let db: ReturnType<typeof gatewayDatabase>;
  let dataDir: string;
  const lnd = new FakeLightning();
  const open: Instance[] = [];
  const fatal: unknown[] = [];

  const start = async (): Promise<Instance> => {
    const config = loadConfig({
      env: envOverrides({ COULOMB_DATABASE_URL: url, COULOMB_DATA_DIR: dataDir }),
    });
    const i = await openAccounts(config, lnd, createLogger('silent'), {
      leaderPollMs: 200,
      onFatal: (err) => fatal.push(err),
      onDeposed: () => undefined,
    });
    open.push(i);
    return i;
  };

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'internal_pay_multi');
    admin = postgres(url, { max: 1, onnotice: false });
    db = gatewayDatabase(admin);
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-intpay-'));
  });
  afterAll(async () => {
    for (const i of open) await i.close().catch(() => undefined);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('an internal invoice: settled once, its account credited once', async () => {
    const a = await start();
    const b = await start();
    const payers = ['p0', 'p1', 'p2', 'p3'];
    const ledger = a.services.ledger;
    await ledger.ensure({ accounts: ['payee', ...payers, OPERATOR_ACCOUNT] });
    await ledger.createAccount({ id: 'payee', kind: 'agent', name: 'payee' }).durable;
    for (const p of payers) {
      await ledger.createAccount({ id: p, kind: 'agent', name: p }).durable;
      await ledger.transfer({
        debitAccountId: OPERATOR_ACCOUNT,
        creditAccountId: p,
        amount: msat(100_000n),
        code: 'funding',
      }).durable;
      await a.services.policies.set(p, tierPolicy('L3'));
    }
    for (let round = 0; round < 5; round++) {
      const inv = await a.services.payments.createInvoice('payee', { amountMsat: msat(1000n) });
      const results = await Promise.allSettled(
        payers.map((p, i) => (i % 2 === 0 ? a : b).services.payments.pay(p, { request: inv.request })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok).toHaveLength(1);
      for (const r of results)
        if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ALREADY_PAID' });
      expect(await db.balance('payee')).toBe(BigInt(round + 1) * 1000n);
    }
    const [row] = await admin<{ n: bigint }[]>`
      SELECT coalesce(sum(amount), 0)::bigint AS n FROM ledger_transfers WHERE credit_account_id = 'payee' AND state = 'posted'`;
    expect(BigInt(row!.n)).toBe(5000n);
    expect(fatal).toEqual([]);
  });

  it('an invoice of another node: one attempt reaches LND, a failed one frees the hash', async () => {
    const [a, b] = open as [Instance, Instance];
    const payers = ['p0', 'p1', 'p2', 'p3'];
    const balances = async () => Promise.all(payers.map((p) => db.balance(p)));
    const before = await balances();
    for (let round = 0; round < 5; round++) {
      const { request, hash } = fakeRequest({ amountMsat: msat(2000n) });
      const calls = lnd.payCalls;
      const results = await Promise.allSettled(
        payers.map((p, i) => (i % 2 === 0 ? a : b).services.payments.pay(p, { request })),
      );
      expect(lnd.payCalls - calls).toBe(1);
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(ok).toHaveLength(1);
      expect(ok[0]).toMatchObject({ value: { status: 'succeeded', paymentHash: hash } });
      for (const r of results)
        if (r.status === 'rejected') expect(['ALREADY_PAID', 'PAYMENT_IN_PROGRESS']).toContain(r.reason.code);
    }
    // Five payments of 2000 and a 1000 fee each, one payer debited for each.
    const after = await balances();
    const spent = before.reduce((s, v) => s + v, 0n) - after.reduce((s, v) => s + v, 0n);
    expect(spent).toBe(5n * 3000n);

    // An attempt LND fails frees the hash: the next attempt, through the other instance, pays.
    const { request } = fakeRequest({ amountMsat: msat(2000n) });
    const behaviour = lnd.behaviour;
    lnd.behaviour = (hash) => ({
      status: 'failed',
      paymentHash: hash,
      reason: 'NO_ROUTE',
      message: 'no route',
    });
    expect(await a.services.payments.pay('p0', { request })).toMatchObject({ status: 'failed' });
    lnd.behaviour = behaviour;
    expect(await b.services.payments.pay('p1', { request })).toMatchObject({ status: 'succeeded' });
    expect(fatal).toEqual([]);
  });
});
