import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { openDatabase, type Database } from '../../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../../src/storage/level-ledger-store.js';

const DAY = 86_400_000;
const T0 = 1_000_000_000;
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function database(): Promise<Database> {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-keys-'));
  dirs.push(dir);
  return openDatabase(dir);
}

/** A ledger on `db` whose clock reads `at` (a new instance: nothing of an earlier one resident). */
async function open(db: Database, at: number): Promise<Ledger> {
  const ledger = await Ledger.open(new LevelLedgerStore(db), { now: () => at });
  await ledger.indexKeys();
  return ledger;
}

const keyed = (ledger: Ledger, key: string) =>
  ledger.transfer({
    debitAccountId: 'world',
    creditAccountId: 'a',
    amount: msat(5),
    code: 'c',
    idempotencyKey: key,
  });

describe('ledger idempotency keys in LevelDB', () => {
  it('a key used again after its retention keeps its record when its old index entry is swept', async () => {
    const db = await database();
    let ledger = await open(db, T0);
    ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    await keyed(ledger, 'k').durable;
    await ledger.close();

    ledger = await open(db, T0 + 33 * DAY);
    await ledger.ensure({ accounts: ['world', 'a'], keys: ['k'] });
    const again = keyed(ledger, 'k');
    expect(again.replayed).toBe(false);
    await again.durable;
    await ledger.close();

    // Another process, where the key is not resident, sweeps the old entry.
    ledger = await open(db, T0 + 33 * DAY);
    expect(await ledger.sweepKeys()).toBe(1);
    expect((await ledger.findByIdempotencyKey('k'))?.id).toBe(again.value.id);
    await ledger.close();
    await db.close();
  });

  it('keys written before the time index are indexed once at open, then swept', async () => {
    const db = await database();
    let ledger = await open(db, T0);
    ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    const t = keyed(ledger, 'old');
    await t.durable;
    await ledger.close();
    // As an older version wrote it: no time in the record, no index entry, no mark.
    await db.batch([
      {
        type: 'put',
        key: '!ledger!i!old',
        value: JSON.stringify({ transferId: t.value.id, fingerprint: 'f' }),
      },
      { type: 'del', key: `!ledger!it!${String(T0).padStart(15, '0')}!old` },
      { type: 'del', key: '!ledger!r!ledgermark!key-index' },
    ]);

    ledger = await open(db, T0 + DAY);
    expect(await db.get(`!ledger!it!${String(T0).padStart(15, '0')}!old`)).toBe('');
    expect(await db.get('!ledger!r!ledgermark!key-index')).toBe('{"done":true}');
    await ledger.close();

    ledger = await open(db, T0 + 33 * DAY);
    expect(await ledger.sweepKeys()).toBe(1);
    expect(await db.get('!ledger!i!old')).toBeUndefined();
    await ledger.close();
    await db.close();
  });
});

describe('live indexes of side records in LevelDB', () => {
  /** classic-level's on-disk size of a key range (what its table files hold for it). */
  const sizeOf = (db: Database, prefix: string): Promise<number> =>
    (db as unknown as { approximateSize(a: string, b: string): Promise<number> }).approximateSize(
      `!ledger!r!${prefix}`,
      `!ledger!r!${prefix}\uffff`,
    );

  it('compactRecords drops what deleted entries left on disk; the live ones stay', async () => {
    const db = await database();
    const store = new LevelLedgerStore(db);
    for (let i = 0; i < 60_000; i += 1000) {
      const batch = db.batch();
      for (let j = i; j < i + 1000; j++)
        batch.put(`!ledger!r!live!${String(j).padStart(6, '0')}`, randomBytes(50).toString('hex'));
      await batch.write();
    }
    const batch = db.batch();
    for (let j = 1; j < 60_000; j++) batch.del(`!ledger!r!live!${String(j).padStart(6, '0')}`);
    await batch.write();
    const before = await sizeOf(db, 'live!');
    expect(before).toBeGreaterThan(1_000_000);
    await store.compactRecords('live!');
    expect(await sizeOf(db, 'live!')).toBeLessThan(before / 100);
    expect((await store.listRecords('live!')).map((r) => r.key)).toEqual(['live!000000']);
    await db.close();
  });
});

describe('account indexes in LevelDB', () => {
  it('a store written before the name and frozen indexes is indexed once at open', async () => {
    const db = await database();
    let ledger = await open(db, T0);
    ledger.createAccount({ id: 'a1', kind: 'agent', name: 'Alpha' });
    ledger.createAccount({ id: 'a2', kind: 'agent', name: 'beta' });
    await ledger.setFrozen('a2', true, 'test').durable;
    await ledger.close();
    // As an older gateway left it: no index entries, no mark.
    const old: string[] = [];
    for await (const k of db.keys({ gte: '!ledger!an!', lt: '!ledger!ao' })) old.push(k);
    for await (const k of db.keys({ gte: '!ledger!af!', lt: '!ledger!ag' })) old.push(k);
    expect(old).toHaveLength(3);
    await db.batch([...old, '!ledger!m!acctidx'].map((key) => ({ type: 'del' as const, key })));

    ledger = await open(db, T0);
    expect(
      (await ledger.searchAccounts({ by: 'name', prefix: 'alp', limit: 10 })).accounts.map((a) => a.id),
    ).toEqual(['a1']);
    expect((await ledger.frozenAccounts({ limit: 10 })).map((a) => a.id)).toEqual(['a2']);
    expect(await db.get('!ledger!m!acctidx')).toBe('1');
    await ledger.close();
  });
});
