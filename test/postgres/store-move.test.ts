import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { msat } from '../../src/domain/msat.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { StoreMoveError } from '../../src/storage/export/format.js';
import {
  assertSameState,
  checkExport,
  exportLevelStore,
  readLines,
  summarize,
  summarizeLevelStore,
} from '../../src/storage/export/move.js';
import { LevelCursorStore } from '../../src/storage/level-cursor-store.js';
import { openDatabase } from '../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../src/storage/level-ledger-store.js';
import { importExport, postgresItems } from '../../src/storage/postgres/postgres-import.js';
import { PostgresLedgerStore } from '../../src/storage/postgres/postgres-ledger-store.js';
import { createTestDatabase } from '../support/postgres.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'coulomb-move-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let databases = 0;
const freshUrl = (): Promise<string> => createTestDatabase(inject('postgresUrl'), `move_${++databases}`);

const KEYED = {
  debitAccountId: 'alice',
  creditAccountId: 'bob',
  amount: msat(25n),
  code: 'transfer',
  idempotencyKey: 'order-7',
};

/** A gateway data dir whose LevelDB store the real ledger filled, and what it holds. */
async function populated(): Promise<{
  dataDir: string;
  pendingId: string;
  keyedId: string;
  postedId: string;
}> {
  const dataDir = tmp();
  const db = await openDatabase(join(dataDir, 'db'));
  const ledger = await Ledger.open(new LevelLedgerStore(db));
  ledger.createAccount({ id: 'sys:lightning', kind: 'system', name: 'clearing', allowNegative: true });
  ledger.createAccount({ id: 'alice', kind: 'agent', name: 'Alice' });
  ledger.createAccount({ id: 'bob', kind: 'agent', name: 'bob' });
  ledger.createAccount({ id: 'carol', kind: 'device', name: 'carol' });
  await ledger.transfer({
    debitAccountId: 'sys:lightning',
    creditAccountId: 'alice',
    amount: msat(2_100_000_000_000_000n),
    code: 'funding',
  }).durable;
  const keyed = ledger.transfer(KEYED, [{ key: 'pay!p1', value: '{"amount":"25"}' }]);
  const held = ledger.transfer(
    { debitAccountId: 'alice', creditAccountId: 'bob', amount: msat(500n), code: 'payment', pending: true },
    [{ key: 'escrow!e1', value: '{"state":"held"}' }],
  );
  const pending = ledger.transfer({
    debitAccountId: 'alice',
    creditAccountId: 'carol',
    amount: msat(123_456_789_012_345n),
    code: 'payment',
    pending: true,
    timeoutMs: 3_600_000,
  });
  await Promise.all([keyed.durable, held.durable, pending.durable]);
  await ledger.post(held.value.id, msat(400n), [{ key: 'task!t1', value: 'done' }]).durable;
  await ledger.setFrozen('carol', true, 'test').durable;
  await ledger.putRecords([
    { key: 'stream!s1', value: 'v' },
    { key: 'task!t2', value: 'open' },
  ]);
  await new LevelCursorStore(db).save({ addIndex: 42, settleIndex: 17 });
  await ledger.close();
  await db.close();
  return { dataDir, pendingId: pending.value.id, keyedId: keyed.value.id, postedId: held.value.id };
}

describe('coulomb store export / import / verify', () => {
  let source: Awaited<ReturnType<typeof populated>>;
  let file: string;
  beforeAll(async () => {
    source = await populated();
    file = join(tmp(), 'store.ndjson');
    await exportLevelStore(source.dataDir, file);
  });

  it('moves everything into PostgreSQL: a ledger opened there sees the same state', async () => {
    const url = await freshUrl();
    const sql = postgres(url, { max: 2, onnotice: () => undefined });
    const { header, summary } = await importExport(sql, readLines(file), log);
    expect(header.source).toBe('leveldb');
    expect(summary.counts).toMatchObject({ account: 4, transfer: 4, key: 1, cursor: 1 });
    assertSameState(summary, await summarize(postgresItems(sql)));
    assertSameState(await summarizeLevelStore(source.dataDir), await summarize(postgresItems(sql)));
    const [cursor] = await sql<{ add_index: string; settle_index: string }[]>`
      SELECT add_index, settle_index FROM duty_cursors WHERE name = 'lightning/invoice-cursor'`;
    expect(cursor).toEqual({ add_index: '42', settle_index: '17' });
    await sql.end();

    const db = await openDatabase(join(source.dataDir, 'db'));
    const before = await Ledger.open(new LevelLedgerStore(db));
    const after = await Ledger.open(await PostgresLedgerStore.open(url, { max: 2 }));
    for (const id of ['sys:lightning', 'alice', 'bob', 'carol'])
      expect(await after.requireAccount(id)).toEqual(await before.requireAccount(id));
    expect((await after.requireAccount('alice')).debitsPending).toBe(123_456_789_012_345n);
    expect((await after.requireAccount('carol')).frozen).toBe(true);
    for (const id of [source.pendingId, source.keyedId, source.postedId])
      expect(await after.getTransfer(id)).toEqual(await before.getTransfer(id));
    // On a shared store a pending transfer comes with the lease of its debit account.
    await after.ensure({ spend: ['alice'] });
    expect(after.pendingTransfers().map((t) => t.id)).toEqual([source.pendingId]);
    for (const id of ['alice', 'bob', 'carol'])
      expect(await after.journal(id, { limit: 50 })).toEqual(await before.journal(id, { limit: 50 }));
    for (const prefix of ['pay!', 'escrow!', 'task!', 'stream!'])
      expect(await after.listRecords(prefix)).toEqual(await before.listRecords(prefix));
    expect(await after.countFrozen()).toBe(1);
    expect(
      (await after.searchAccounts({ by: 'name', prefix: 'al', limit: 5 })).accounts.map((a) => a.id),
    ).toEqual(['alice']);

    // An idempotent replay on PostgreSQL returns the first transfer.
    await after.ensure({ spend: ['alice'], accounts: ['bob'], keys: ['order-7'] });
    const replay = after.transfer(KEYED);
    expect(replay.replayed).toBe(true);
    expect(replay.value.id).toBe(source.keyedId);
    // New journal entries continue after the imported ones.
    const last = (await before.journal('alice', { limit: 1 }))[0]!.seq;
    await after.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(1n),
      code: 'transfer',
    }).durable;
    expect((await after.journal('alice', { limit: 1 }))[0]!.seq).toBeGreaterThan(last);
    await after.close();
    await before.close();
    await db.close();
  });

  it('refuses a target database that is not empty, and leaves it as it was', async () => {
    const url = await freshUrl();
    const sql = postgres(url, { max: 2, onnotice: () => undefined });
    await importExport(sql, readLines(file), log);
    const err = await importExport(sql, readLines(file), log).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreMoveError);
    expect((err as StoreMoveError).code).toBe('STORE_TARGET_NOT_EMPTY');
    const [n] = await sql<{ n: string }[]>`SELECT count(*) AS n FROM ledger_accounts`;
    expect(n?.n).toBe('4');
    await sql.end();
  });

  it('refuses a truncated or edited file and imports nothing of it (one transaction)', async () => {
    const lines = readFileSync(file, 'utf8').split('\n');
    const truncated = join(tmp(), 'truncated.ndjson');
    writeFileSync(truncated, lines.slice(0, -3).join('\n') + '\n');
    const edited = join(tmp(), 'edited.ndjson');
    writeFileSync(edited, readFileSync(file, 'utf8').replace('"debitsPending":"0"', '"debitsPending":"1"'));
    expect(readFileSync(edited, 'utf8')).not.toBe(readFileSync(file, 'utf8'));
    for (const [path, code] of [
      [truncated, 'STORE_EXPORT_TRUNCATED'],
      [edited, 'STORE_EXPORT_CORRUPT'],
    ] as const) {
      await expect(checkExport(readLines(path))).rejects.toMatchObject({ code });
      const sql = postgres(await freshUrl(), { max: 2, onnotice: () => undefined });
      await expect(importExport(sql, readLines(path), log)).rejects.toMatchObject({ code });
      const [n] = await sql<{ n: string }[]>`
        SELECT (SELECT count(*) FROM ledger_accounts) + (SELECT count(*) FROM ledger_transfers)
          + (SELECT count(*) FROM ledger_records) + (SELECT count(*) FROM ledger_journal) AS n`;
      expect(n?.n).toBe('0');
      await sql.end();
    }
  });

  it('refuses to export a LevelDB store a running gateway holds (its LOCK)', async () => {
    const db = await openDatabase(join(source.dataDir, 'db'));
    const err = await exportLevelStore(source.dataDir, join(tmp(), 'locked.ndjson')).catch((e: unknown) => e);
    await db.close();
    expect(err).toBeInstanceOf(StoreMoveError);
    expect((err as StoreMoveError).code).toBe('STORE_SOURCE_LOCKED');
    await expect(exportLevelStore(tmp(), undefined)).rejects.toMatchObject({ code: 'STORE_SOURCE_MISSING' });
  });

  it('verify reports a target that differs from the source', async () => {
    const url = await freshUrl();
    const sql = postgres(url, { max: 2, onnotice: () => undefined });
    const { summary } = await importExport(sql, readLines(file), log);
    await sql`UPDATE ledger_records SET value = 'changed' WHERE key = 'task!t2'`;
    expect(() => assertSameState(summary, summary)).not.toThrow();
    const target = await summarize(postgresItems(sql));
    expect(() => assertSameState(summary, target)).toThrow(
      expect.objectContaining({ code: 'STORE_VERIFY_MISMATCH' }) as Error,
    );
    await sql.end();
  });
});
