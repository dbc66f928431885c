import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { msat } from '../../src/domain/msat.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { availableOf } from '../../src/ledger/types.js';
import { createLogger } from '../../src/logger.js';
import { USAGE, UsageOrphans, usageMemo } from '../../src/proxy/usage-orphans.js';
import { AdvisoryLockLeader } from '../../src/storage/postgres/advisory-lock-leader.js';
import { PostgresLedgerStore } from '../../src/storage/postgres/postgres-ledger-store.js';
import { PostgresUsageOrphans } from '../../src/storage/postgres/postgres-usage-orphans.js';
import { createTestDatabase } from '../support/postgres.js';
import { eventually } from '../support/regtest.js';

/**
 * Metered reservations left by an instance that is gone (a shared store): the leader's sweep voids
 * those whose instance has not been connected in two sweeps in a row, and those made before the
 * store was shared (no instance named); a reservation of a live instance stays, however old.
 */
describe('orphaned usage reservations on PostgreSQL', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });

  it('voids the reservations of gone instances and untagged ones, never a live instance’s', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'usage_orphans');
    const store = await PostgresLedgerStore.open(url, { max: 2 });
    const ledger = await Ledger.open(store, { leases: { tickMs: 10, graceMs: 10, idleMs: 100 } });
    closers.push(() => ledger.close());
    // An instance that runs: its election session is open under its id.
    const liveId = randomUUID();
    const election = new AdvisoryLockLeader(url, { instanceId: liveId, pollMs: 100 });
    election.start({ elected: () => undefined, deposed: () => undefined });
    closers.push(() => election.close());
    const source = new PostgresUsageOrphans(store.sql);
    await eventually(
      async () => ((await source.liveInstances()).has(liveId) ? true : undefined),
      5000,
      'live',
    );

    await ledger.ensure({ accounts: ['sys', 'cred', 'revenue'] });
    ledger.createAccount({ id: 'sys', kind: 'system', name: 'sys', allowNegative: true });
    ledger.createAccount({ id: 'revenue', kind: 'service', name: 'revenue' });
    await ledger.createAccount({ id: 'cred', kind: 'agent', name: 'cred' }).durable;
    await ledger.transfer({
      debitAccountId: 'sys',
      creditAccountId: 'cred',
      amount: msat(10_000n),
      code: 'funding',
    }).durable;
    await ledger.ensure({ spend: ['cred'], accounts: ['revenue'] });
    const reserve = async (memo: string): Promise<string> => {
      const r = ledger.transfer({
        debitAccountId: 'cred',
        creditAccountId: 'revenue',
        amount: msat(1000n),
        code: USAGE,
        pending: true,
        memo,
      });
      await r.durable;
      return r.value.id;
    };
    const ofLive = await reserve(usageMemo('/v1/chat/completions', liveId));
    const ofGone = await reserve(usageMemo('/v1/chat/completions', randomUUID()));
    const untagged = await reserve('/v1/chat/completions');
    // Not a usage reservation: never the sweep's.
    await ledger.ensure({ spend: ['cred'], accounts: ['revenue'] });
    const payment = ledger.transfer({
      debitAccountId: 'cred',
      creditAccountId: 'revenue',
      amount: msat(500n),
      code: 'payment',
      pending: true,
      memo: usageMemo('/x', randomUUID()),
    });
    await payment.durable;

    const states = async (): Promise<Record<string, string>> => {
      const sql = postgres(url, { max: 1, onnotice: () => undefined });
      try {
        const rows = await sql<{ id: string; state: string }[]>`SELECT id, state FROM ledger_transfers
          WHERE id IN ${sql([ofLive, ofGone, untagged, payment.value.id])}`;
        return Object.fromEntries(rows.map((r) => [r.id, r.state]));
      } finally {
        await sql.end();
      }
    };

    // Young reservations are left alone whatever their tag (the grace).
    let clock = Date.now();
    const sweep = new UsageOrphans(ledger, source, createLogger('silent'), { now: () => clock });
    expect(await sweep.sweep()).toBe(0);
    clock += 61_000;
    // First look at an instance missing: not yet (it may be reconnecting); untagged: at once.
    expect(await sweep.sweep()).toBe(1);
    expect(await states()).toMatchObject({ [untagged]: 'voided', [ofGone]: 'pending', [ofLive]: 'pending' });
    // Missing in two sweeps in a row: voided. The live instance's stays.
    expect(await sweep.sweep()).toBe(1);
    expect(await states()).toEqual({
      [ofLive]: 'pending',
      [ofGone]: 'voided',
      [untagged]: 'voided',
      [payment.value.id]: 'pending',
    });
    await ledger.ensure({ spend: ['cred'] });
    expect(availableOf(ledger.accountNow('cred')!)).toBe(10_000n - 1000n - 500n);

    // The live instance dies: its session goes, and its reservation is voided two sweeps later.
    await election.close();
    await eventually(
      async () => ((await source.liveInstances()).has(liveId) ? undefined : true),
      5000,
      'gone',
    );
    expect(await sweep.sweep()).toBe(0);
    expect(await sweep.sweep()).toBe(1);
    expect((await states())[ofLive]).toBe('voided');
  });
});
