import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger, type LedgerOptions } from '../../../src/ledger/ledger.js';
import type { LedgerStore, LedgerWrite } from '../../../src/ledger/store.js';
import { openDatabase, type Database } from '../../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../../src/storage/level-ledger-store.js';
import { PostgresLedgerStore } from '../../../src/storage/postgres/postgres-ledger-store.js';
import { createTestDatabase } from '../../support/postgres.js';

/**
 * One conformance suite for every LedgerStore: the same store-level behaviour on LevelDB (the
 * embedded default) and on PostgreSQL. A "store" here is one place on disk; `open` gives a fresh
 * handle on it (a restart), `fresh` a new empty one.
 */
interface Backend {
  name: string;
  /** A new empty store location; returns an opener for it. */
  fresh(): Promise<() => Promise<{ store: LedgerStore; close(): Promise<void> }>>;
  cleanup(): Promise<void>;
}

function levelBackend(): Backend {
  const dirs: string[] = [];
  return {
    name: 'LevelDB',
    async fresh() {
      const dir = mkdtempSync(join(tmpdir(), 'coulomb-conf-'));
      dirs.push(dir);
      // The LevelDB store leaves its root database to whoever opened it: a restart closes it here.
      let current: Database | undefined;
      return async () => {
        await current?.close();
        const db: Database = await openDatabase(dir);
        current = db;
        return { store: new LevelLedgerStore(db), close: () => db.close() };
      };
    },
    async cleanup() {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

let databases = 0;
function postgresBackend(): Backend {
  return {
    name: 'PostgreSQL',
    async fresh() {
      const url = await createTestDatabase(inject('postgresUrl'), `conf_${++databases}`);
      return async () => {
        const store = await PostgresLedgerStore.open(url, { max: 4 });
        return { store, close: async () => undefined };
      };
    },
    async cleanup() {},
  };
}

/** A ledger on a store location, with its system account and one funded agent account. */
async function seeded(open: () => Promise<{ store: LedgerStore }>, funds: bigint): Promise<Ledger> {
  const { store } = await open();
  const ledger = await Ledger.open(store);
  // Chosen ids are looked up first (a shared store may hold them already); the agents' leases
  // are taken, as any step that debits them does.
  await ledger.ensure({ accounts: ['sys:lightning', 'alice', 'bob'] });
  ledger.createAccount({ id: 'sys:lightning', kind: 'system', name: 'clearing', allowNegative: true });
  ledger.createAccount({ id: 'alice', kind: 'agent', name: 'alice' });
  ledger.createAccount({ id: 'bob', kind: 'agent', name: 'bob' });
  await ledger.ensure({ spend: ['alice', 'bob'] });
  await ledger.transfer({
    debitAccountId: 'sys:lightning',
    creditAccountId: 'alice',
    amount: msat(funds),
    code: 'funding',
  }).durable;
  return ledger;
}

const backends = [levelBackend(), postgresBackend()];
afterAll(async () => {
  for (const b of backends) await b.cleanup();
});

describe.each(backends)('LedgerStore conformance: $name', (backend) => {
  let open: Awaited<ReturnType<Backend['fresh']>>;
  beforeEach(async () => {
    open = await backend.fresh();
  });

  it('keeps transfers, balances, the journal and side records across a restart', async () => {
    const ledger = await seeded(open, 1000n);
    const paid = ledger.transfer(
      { debitAccountId: 'alice', creditAccountId: 'bob', amount: msat(300n), code: 'transfer' },
      [{ key: 'pay!1', value: 'one' }],
    );
    const held = ledger.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(200n),
      code: 'payment',
      pending: true,
    });
    await Promise.all([paid.durable, held.durable]);
    await ledger.post(held.value.id, msat(150n), [{ key: 'pay!2', value: 'two' }]).durable;
    const voided = ledger.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(50n),
      code: 'payment',
      pending: true,
    });
    await ledger.void(voided.value.id).durable;
    await ledger.putRecords([{ key: 'pay!1', value: null }]);
    await ledger.close();

    const again = await Ledger.open((await open()).store);
    expect((await again.requireAccount('alice')).creditsPosted).toBe(1000n);
    expect((await again.requireAccount('alice')).debitsPosted).toBe(450n);
    expect((await again.requireAccount('bob')).creditsPosted).toBe(450n);
    expect((await again.requireAccount('alice')).debitsPending).toBe(0n);
    expect((await again.getTransfer(held.value.id))?.state).toBe('posted');
    expect((await again.getTransfer(held.value.id))?.amount).toBe(150n);
    expect((await again.getTransfer(voided.value.id))?.state).toBe('voided');
    expect(again.pendingTransfers()).toEqual([]);
    const journal = await again.journal('alice', { limit: 10 });
    expect(journal.map((e) => e.type)).toEqual([
      'transfer_voided',
      'transfer_created',
      'transfer_posted',
      'transfer_created',
      'transfer_created',
      'transfer_created',
      'account_created',
    ]);
    const older = await again.journal('alice', { limit: 2, beforeSeq: journal[1]!.seq });
    expect(older.map((e) => e.seq)).toEqual([journal[2]!.seq, journal[3]!.seq]);
    expect(await again.listRecords('pay!')).toEqual([{ key: 'pay!2', value: 'two' }]);
    await again.close();
  });

  it('keeps a pending transfer pending across a restart, with its reservation', async () => {
    const ledger = await seeded(open, 100n);
    const held = ledger.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(60n),
      code: 'payment',
      pending: true,
    });
    await held.durable;
    await ledger.close();
    const again = await Ledger.open((await open()).store);
    // Held in memory by the instance spending from its debit account (on a shared store, it
    // comes with the lease; a store one process owns loads every one at open).
    await again.ensure({ spend: ['alice'], accounts: ['bob'] });
    expect(again.pendingTransfers().map((t) => t.id)).toEqual([held.value.id]);
    expect(() =>
      again.transfer({
        debitAccountId: 'alice',
        creditAccountId: 'bob',
        amount: msat(41n),
        code: 'transfer',
      }),
    ).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_FUNDS' }));
    await again.close();
  });

  it('refuses an overdraw and keeps nothing of it', async () => {
    const ledger = await seeded(open, 100n);
    expect(() =>
      ledger.transfer({
        debitAccountId: 'alice',
        creditAccountId: 'bob',
        amount: msat(101n),
        code: 'transfer',
      }),
    ).toThrow(expect.objectContaining({ code: 'INSUFFICIENT_FUNDS' }));
    await ledger.close();
    const again = await Ledger.open((await open()).store);
    expect((await again.requireAccount('alice')).debitsPosted).toBe(0n);
    await again.close();
  });

  it('an idempotent replay returns the first transfer, also after a restart', async () => {
    const ledger = await seeded(open, 100n);
    const req = {
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(10n),
      code: 'transfer',
      idempotencyKey: 'order-7',
    };
    await ledger.ensure({ spend: ['alice'], accounts: ['bob'], keys: ['order-7'] });
    const first = ledger.transfer(req);
    await first.durable;
    const second = ledger.transfer(req);
    expect(second.replayed).toBe(true);
    expect(second.value.id).toBe(first.value.id);
    await ledger.close();
    const again = await Ledger.open((await open()).store);
    await again.ensure({ spend: ['alice'], accounts: ['bob'], keys: ['order-7'] });
    const third = again.transfer(req);
    expect(third.replayed).toBe(true);
    expect(third.value.id).toBe(first.value.id);
    expect((await again.requireAccount('alice')).debitsPosted).toBe(10n);
    expect((await again.findByIdempotencyKey('order-7'))?.id).toBe(first.value.id);
    await again.close();
  });

  it('finds accounts by id or name prefix, a page at a time, also after a restart', async () => {
    const ledger = await seeded(open, 100n);
    await ledger.ensure({ accounts: ['shop-1', 'shop-2', 'shop-3', 'shop-10', 'shopkeeper', 'sho'] });
    for (const [id, name] of [
      ['shop-1', 'Coffee Shop'],
      ['shop-2', 'coffee stand'],
      ['shop-3', 'Cofactor'],
      ['shop-10', 'Tea house'],
      ['shopkeeper', 'COFFEE roaster'],
      ['sho', 'Coffee'],
    ] as const)
      ledger.createAccount({ id, kind: 'agent', name });
    const ids = async (by: 'id' | 'name', prefix: string, limit: number, l: Ledger) => {
      const pages: string[][] = [];
      let after: string | undefined;
      do {
        const page = await l.searchAccounts({ by, prefix, limit, ...(after !== undefined ? { after } : {}) });
        pages.push(page.accounts.map((a) => a.id));
        after = page.next;
      } while (after !== undefined);
      return pages;
    };
    // Names compare in lower case, then by id; ids in byte order.
    expect(await ids('name', 'coffee', 2, ledger)).toEqual([['sho', 'shopkeeper'], ['shop-1', 'shop-2'], []]);
    expect(await ids('name', 'COFFEE S', 5, ledger)).toEqual([['shop-1', 'shop-2']]);
    expect(await ids('id', 'shop-', 2, ledger)).toEqual([['shop-1', 'shop-10'], ['shop-2', 'shop-3'], []]);
    expect(await ids('id', 'shop', 10, ledger)).toEqual([
      ['shop-1', 'shop-10', 'shop-2', 'shop-3', 'shopkeeper'],
    ]);
    expect(await ids('id', 'nobody', 10, ledger)).toEqual([[]]);
    await ledger.close();
    const again = await Ledger.open((await open()).store);
    expect(await ids('name', 'cof', 10, again)).toEqual([
      ['shop-3', 'sho', 'shopkeeper', 'shop-1', 'shop-2'],
    ]);
    // A cursor from before the prefix's range starts at the range.
    const page = await again.searchAccounts({ by: 'id', prefix: 'shop-', after: 'a', limit: 1 });
    expect(page.accounts.map((a) => a.id)).toEqual(['shop-1']);
    await again.close();
  });

  it('keeps an index of the frozen accounts as they are frozen and unfrozen', async () => {
    const ledger = await seeded(open, 100n);
    await ledger.ensure({ accounts: ['carol'] });
    ledger.createAccount({ id: 'carol', kind: 'agent', name: 'carol' });
    await ledger.ensure({ spend: ['carol'] });
    expect(await ledger.countFrozen()).toBe(0);
    ledger.setFrozen('bob', true, 'test');
    ledger.setFrozen('carol', true, 'test');
    ledger.setFrozen('alice', true, 'test');
    await ledger.setFrozen('alice', false, 'test').durable;
    expect((await ledger.frozenAccounts({ limit: 10 })).map((a) => a.id)).toEqual(['bob', 'carol']);
    // Frozen accounts stay in the index while money moves to them.
    await ledger.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(5n),
      code: 'transfer',
    }).durable;
    await ledger.close();
    const again = await Ledger.open((await open()).store);
    expect(await again.countFrozen()).toBe(2);
    const first = await again.frozenAccounts({ limit: 1 });
    expect(first.map((a) => [a.id, a.frozen])).toEqual([['bob', true]]);
    expect((await again.frozenAccounts({ after: 'bob', limit: 1 })).map((a) => a.id)).toEqual(['carol']);
    await again.ensure({ spend: ['bob'] });
    await again.setFrozen('bob', false, 'test').durable;
    expect((await again.frozenAccounts({ limit: 10 })).map((a) => a.id)).toEqual(['carol']);
    expect(await again.countFrozen()).toBe(1);
    await again.close();
  });
});

/**
 * Several ledger instances on one PostgreSQL database (LevelDB is single-process by design: a
 * second process cannot open it). An instance validates a debit against its memory only under the
 * account's lease (a database row that fences every batch): the others wait for the lease, then
 * read the account afresh. So every refusal here is the validating instance's own, with its
 * code, and no instance is ever refused by the database (which would stop it).
 */
describe('several ledger instances on one PostgreSQL database', () => {
  const freshDatabase = (): Promise<string> =>
    createTestDatabase(inject('postgresUrl'), `multi_${++databases}`);

  /** Reads every account and transfer straight from the database. */
  async function audit(url: string): Promise<void> {
    const store = await PostgresLedgerStore.open(url, { max: 1 });
    try {
      const accounts = await store.sql<
        { id: string; allow_negative: boolean; cp: string; dp: string; cq: string; dq: string }[]
      >`SELECT id, allow_negative, credits_posted AS cp, debits_posted AS dp, credits_pending AS cq,
               debits_pending AS dq FROM ledger_accounts`;
      let total = 0n;
      for (const a of accounts) {
        const available = BigInt(a.cp) - BigInt(a.dp) - BigInt(a.dq);
        if (!a.allow_negative) expect(available, `account ${a.id} overdrawn`).toBeGreaterThanOrEqual(0n);
        total += BigInt(a.cp) - BigInt(a.dp);
        // Each balance is exactly what its transfers say.
        const [sums] = await store.sql<{ cp: string; dp: string; cq: string; dq: string }[]>`
          SELECT
            coalesce(sum(CASE WHEN state = 'posted' THEN amount WHEN state = 'pending' THEN coalesce(advanced, 0) END)
              FILTER (WHERE credit_account_id = ${a.id}), 0) AS cp,
            coalesce(sum(CASE WHEN state = 'posted' THEN amount WHEN state = 'pending' THEN coalesce(advanced, 0) END)
              FILTER (WHERE debit_account_id = ${a.id}), 0) AS dp,
            coalesce(sum(amount - coalesce(advanced, 0)) FILTER (WHERE state = 'pending' AND credit_account_id = ${a.id}), 0) AS cq,
            coalesce(sum(amount - coalesce(advanced, 0)) FILTER (WHERE state = 'pending' AND debit_account_id = ${a.id}), 0) AS dq
          FROM ledger_transfers`;
        expect({ cp: a.cp, dp: a.dp, cq: a.cq, dq: a.dq }).toEqual(sums);
      }
      expect(total).toBe(0n);
    } finally {
      await store.close();
    }
  }

  async function instance(url: string, options: LedgerOptions = {}): Promise<Ledger> {
    return Ledger.open(await PostgresLedgerStore.open(url, { max: 2 }), options);
  }

  async function funded(url: string, funds: bigint): Promise<void> {
    const setup = await seeded(async () => ({ store: await PostgresLedgerStore.open(url) }), funds);
    await setup.close();
  }

  /** What a step's outcome was: 'ok', 'replayed', or the refusal's code. */
  async function outcome(step: () => Promise<{ replayed: boolean }>): Promise<string> {
    try {
      return (await step()).replayed ? 'replayed' : 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  /** A debit as a service makes one: the payer's lease, then one synchronous step. */
  function spend(l: Ledger, amount: bigint, extra: { idempotencyKey?: string; budget?: bigint } = {}) {
    return outcome(async () => {
      const keys = extra.idempotencyKey !== undefined ? [extra.idempotencyKey] : [];
      await l.ensure({ spend: ['alice'], accounts: ['bob'], keys });
      // A budget as the policy engine checks one: against the spend buckets, in the same step.
      if (extra.budget !== undefined && l.spending('alice').spentSince(0) + amount > extra.budget)
        throw Object.assign(new Error('over budget'), { code: 'BUDGET_EXCEEDED' });
      const t = l.transfer({
        debitAccountId: 'alice',
        creditAccountId: 'bob',
        amount: msat(amount),
        code: 'payment',
        ...(extra.idempotencyKey !== undefined ? { idempotencyKey: extra.idempotencyKey } : {}),
      });
      await t.durable;
      return t;
    });
  }

  async function closeAll(ledgers: Ledger[]): Promise<void> {
    await Promise.all(ledgers.map((l) => l.close()));
  }

  it('three instances spending one account at once never overdraw it, and none is stopped', async () => {
    const url = await freshDatabase();
    await funded(url, 1000n);
    const ledgers = await Promise.all([0, 1, 2].map(() => instance(url)));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => spend(ledgers[i % 3]!, 100n)));
    expect(results.filter((r) => r === 'ok')).toHaveLength(10);
    expect(results.filter((r) => r !== 'ok')).toEqual(Array<string>(20).fill('INSUFFICIENT_FUNDS'));
    // Each instance goes on working and, under the lease, sees what all of them did.
    for (const l of ledgers) {
      await l.ensure({ spend: ['alice'] });
      expect(l.accountNow('alice')!.debitsPosted).toBe(1000n);
    }
    await closeAll(ledgers);
    await audit(url);
  });

  it('three instances never exceed a budget together: the spend buckets travel with the lease', async () => {
    const url = await freshDatabase();
    await funded(url, 10_000n);
    const ledgers = await Promise.all([0, 1, 2].map(() => instance(url)));
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => spend(ledgers[i % 3]!, 100n, { budget: 1000n })),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(10);
    expect(results.filter((r) => r !== 'ok')).toEqual(Array<string>(20).fill('BUDGET_EXCEEDED'));
    await closeAll(ledgers);
    const after = await instance(url);
    await after.ensure({ spend: ['alice'] });
    expect(after.spending('alice').spentSince(0)).toBe(1000n);
    await after.close();
    await audit(url);
  });

  it('one ledger idempotency key used on three instances at once moves money once', async () => {
    const url = await freshDatabase();
    await funded(url, 100n);
    const ledgers = await Promise.all([0, 1, 2].map(() => instance(url)));
    const results = await Promise.all(ledgers.map((l) => spend(l, 5n, { idempotencyKey: 'invoice:abc' })));
    expect([...results].sort()).toEqual(['ok', 'replayed', 'replayed']);
    await closeAll(ledgers);
    const after = await instance(url);
    expect((await after.requireAccount('alice')).debitsPosted).toBe(5n);
    await after.close();
    await audit(url);
  });

  it('one client idempotency key sent to three instances at once creates once, and each gets its result', async () => {
    const url = await freshDatabase();
    await funded(url, 100n);
    const ledgers = await Promise.all([0, 1, 2].map(() => instance(url)));
    const ids = await Promise.all(
      ledgers.map((l) =>
        l.idempotent(
          { accountId: 'alice', key: 'k-1', operation: 'transfer', request: { to: 'bob', amount: '7' } },
          async (records) => {
            await l.ensure({ spend: ['alice'], accounts: ['bob'] });
            const id = randomUUID();
            const t = l.transfer(
              { id, debitAccountId: 'alice', creditAccountId: 'bob', amount: msat(7n), code: 'transfer' },
              records(id),
            );
            await t.durable;
            return id;
          },
          (ref) => ref,
        ),
      ),
    );
    expect(new Set(ids).size).toBe(1);
    await closeAll(ledgers);
    const after = await instance(url);
    expect((await after.requireAccount('alice')).debitsPosted).toBe(7n);
    await after.close();
    await audit(url);
  });

  it('a freeze made on one instance stops the spends of another', async () => {
    const url = await freshDatabase();
    await funded(url, 100n);
    const [one, two] = await Promise.all([instance(url), instance(url)]);
    expect(await spend(one, 10n)).toBe('ok');
    await two.ensure({ spend: ['alice'] });
    await two.setFrozen('alice', true, 'test').durable;
    expect(await spend(one, 10n)).toBe('ACCOUNT_FROZEN');
    // Another account's write on an instance that still remembers alice unfrozen does not undo it.
    expect(
      await outcome(async () => {
        await one.ensure({ spend: ['bob'], accounts: ['alice'] });
        const t = one.transfer({
          debitAccountId: 'bob',
          creditAccountId: 'alice',
          amount: msat(1n),
          code: 'transfer',
        });
        await t.durable;
        return t;
      }),
    ).toBe('ok');
    await closeAll([one, two]);
    const after = await instance(url);
    expect((await after.requireAccount('alice')).frozen).toBe(true);
    await after.close();
    await audit(url);
  });

  it('the lease of an instance that died runs out, and another instance takes the account over', async () => {
    const url = await freshDatabase();
    await funded(url, 100n);
    const store = await PostgresLedgerStore.open(url, { max: 2 });
    const dead = await Ledger.open(store, { leases: { ttlMs: 1500 } });
    expect(await spend(dead, 10n)).toBe('ok');
    // The process is gone: its connections end, its lease row stays until it runs out.
    await store.sql.end({ timeout: 0 });
    const two = await instance(url);
    expect(await spend(two, 20n)).toBe('ok');
    expect(two.accountNow('alice')!.debitsPosted).toBe(30n);
    await two.close();
    await dead.close().catch(() => undefined);
    await audit(url);
  });

  it('the database refuses a batch whose debit was validated under a lease the writer no longer holds', async () => {
    const url = await freshDatabase();
    await funded(url, 100n);
    const store = await PostgresLedgerStore.open(url, { max: 2 });
    const { granted } = await store.leases.acquireLeases(['alice'], 60_000);
    const epoch = granted[0]!.epoch;
    // A transfer created by a batch, as the ledger writes one: the row and its journal entry.
    const transfer = (id: string): LedgerWrite[] => [
      {
        type: 'transfer',
        transfer: {
          id,
          debitAccountId: 'alice',
          creditAccountId: 'bob',
          amount: msat(10n),
          state: 'posted',
          code: 'transfer',
          createdAt: Date.now(),
          resolvedAt: Date.now(),
        },
      },
      {
        type: 'journal',
        entry: {
          seq: 0,
          at: Date.now(),
          type: 'transfer_created',
          accountIds: ['alice', 'bob'],
          transferId: id,
        },
      },
    ];
    await expect(
      store.commit([...transfer('t-stale'), { type: 'fence', accountId: 'alice', epoch: epoch + 1 }]),
    ).rejects.toMatchObject({ code: 'LEASE_LOST' });
    await store.leases.releaseLeases([{ accountId: 'alice', epoch }]);
    await expect(
      store.commit([...transfer('t-released'), { type: 'fence', accountId: 'alice', epoch }]),
    ).rejects.toMatchObject({ code: 'LEASE_LOST' });
    const again = await store.leases.acquireLeases(['alice'], 60_000);
    await store.commit([
      ...transfer('t-held'),
      { type: 'fence', accountId: 'alice', epoch: again.granted[0]!.epoch },
    ]);
    expect((await store.getTransfers(['t-stale', 't-released', 't-held'])).map((t) => t?.id)).toEqual([
      undefined,
      undefined,
      't-held',
    ]);
    await store.close();
    await audit(url);
  });

  it('property: random transfers, posts and voids from three instances never overdraw and stop no instance', async () => {
    const accounts = ['a0', 'a1', 'a2', 'a3'];
    const op = fc.record({
      instance: fc.integer({ min: 0, max: 2 }),
      from: fc.integer({ min: 0, max: 3 }),
      to: fc.integer({ min: 0, max: 3 }),
      amount: fc.bigInt({ min: 1n, max: 60n }),
      pending: fc.boolean(),
      settle: fc.constantFrom('post', 'void', 'keep'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 16 }), async (ops) => {
        const url = await freshDatabase();
        const setup = await instance(url);
        await setup.ensure({ accounts: ['sys:lightning', ...accounts] });
        setup.createAccount({ id: 'sys:lightning', kind: 'system', name: 'clearing', allowNegative: true });
        for (const id of accounts) setup.createAccount({ id, kind: 'agent', name: id });
        for (const id of accounts)
          setup.transfer({
            debitAccountId: 'sys:lightning',
            creditAccountId: id,
            amount: msat(100n),
            code: 'funding',
          });
        await setup.close();
        const ledgers = await Promise.all([0, 1, 2].map(() => instance(url)));
        const codes = await Promise.all(
          ops
            .filter((o) => o.from !== o.to)
            .map((o) =>
              outcome(async () => {
                const l = ledgers[o.instance]!;
                await l.ensure({ spend: [accounts[o.from]!], accounts: [accounts[o.to]!] });
                const t = l.transfer({
                  debitAccountId: accounts[o.from]!,
                  creditAccountId: accounts[o.to]!,
                  amount: msat(o.amount),
                  code: 'transfer',
                  pending: o.pending,
                });
                if (o.pending && o.settle === 'post') await l.post(t.value.id).durable;
                else if (o.pending && o.settle === 'void') await l.void(t.value.id).durable;
                else await t.durable;
                return t;
              }),
            ),
        );
        for (const c of codes) expect(['ok', 'INSUFFICIENT_FUNDS']).toContain(c);
        await closeAll(ledgers);
        await audit(url);
      }),
      { numRuns: 6 },
    );
    // A budget, not a timing assertion: six runs of three instances on 2 loaded cores.
  }, 600_000);
});
