import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { xOnlyOf } from '../../src/devices/envelope.js';
import { DeviceRegistry } from '../../src/devices/registry.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { exportLevelStore, readLines } from '../../src/storage/export/move.js';
import { openDatabase } from '../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../src/storage/level-ledger-store.js';
import { migrate } from '../../src/storage/postgres/migrations.js';
import { PostgresDeviceCounters } from '../../src/storage/postgres/postgres-device-counters.js';
import { importExport } from '../../src/storage/postgres/postgres-import.js';
import { createTestDatabase } from '../support/postgres.js';

const DEVICE = 'ab'.repeat(32);
const MOVED = xOnlyOf('9a'.repeat(32));
const GONE = xOnlyOf('9b'.repeat(32));

/** Devices' request counters in PostgreSQL, taken by several instances (pools) at once. */
describe('PostgreSQL device counters', () => {
  let url: string;
  const pools: Sql[] = [];
  const instance = (): PostgresDeviceCounters => {
    const sql = postgres(url, { max: 4, onnotice: false });
    pools.push(sql);
    return new PostgresDeviceCounters(sql);
  };

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'device_counters');
    const sql = postgres(url, { max: 1, onnotice: false });
    pools.push(sql);
    await migrate(sql);
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
  });

  it('takes a counter only above the last one, whichever instance took that', async () => {
    const [one, two] = [instance(), instance()];
    expect(await one.advance(DEVICE, 3)).toEqual({ accepted: true });
    expect(await two.advance(DEVICE, 3)).toEqual({ accepted: false, last: 3, revoked: false });
    expect(await two.advance(DEVICE, 2)).toEqual({ accepted: false, last: 3, revoked: false });
    expect(await two.advance(DEVICE, 4)).toEqual({ accepted: true });
    expect(await one.advance(DEVICE, 4)).toEqual({ accepted: false, last: 4, revoked: false });
    // Another device has counters of its own.
    expect(await one.advance('cd'.repeat(32), 1)).toEqual({ accepted: true });
  });

  it('of one counter presented by three instances at once, accepts exactly one, round after round', async () => {
    const instances = [instance(), instance(), instance()];
    const device = 'ef'.repeat(32);
    for (let c = 1; c <= 25; c++) {
      // Several submissions per instance too: each pool runs them on different connections.
      const claims = await Promise.all(
        instances.flatMap((i) => [i.advance(device, c), i.advance(device, c)]),
      );
      expect(claims.filter((r) => r.accepted)).toHaveLength(1);
      expect(claims.filter((r) => !r.accepted)).toEqual(
        Array(5).fill({ accepted: false, last: c, revoked: false }),
      );
    }
  });

  it('refuses every counter of a device revoked by any instance', async () => {
    const [one, two] = [instance(), instance()];
    const device = '12'.repeat(32);
    expect(await one.advance(device, 1)).toEqual({ accepted: true });
    await two.revoke(device);
    expect(await one.advance(device, 2)).toEqual({ accepted: false, last: 1, revoked: true });
    // Revoked before it ever sent a request.
    await one.revoke('34'.repeat(32));
    expect(await two.advance('34'.repeat(32), 1)).toEqual({ accepted: false, last: 0, revoked: true });
  });

  it('hands out each event number of a device once across instances, in increasing order', async () => {
    const instances = [instance(), instance(), instance()];
    const device = '56'.repeat(32);
    const numbers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => instances[i % 3]!.nextEventSeq(device, 1)),
    );
    expect([...numbers].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // A floor from a device record written before the table (a store moved from LevelDB).
    expect(await instances[0]!.nextEventSeq('78'.repeat(32), 41)).toBe(41);
    expect(await instances[1]!.nextEventSeq('78'.repeat(32), 1)).toBe(42);
    // Event numbers and request counters of one device do not disturb each other.
    expect(await instances[2]!.advance(device, 5)).toEqual({ accepted: true });
    expect(await instances[2]!.nextEventSeq(device, 1)).toBe(31);
  });
});

describe('device counters of devices registered before the table', () => {
  const log = pino({ level: 'silent' });
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A LevelDB store with two devices: one at counter 9 and event 2, one revoked. */
  async function levelStore(): Promise<string> {
    const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-devmove-'));
    dirs.push(dataDir);
    const db = await openDatabase(join(dataDir, 'db'));
    const ledger = await Ledger.open(new LevelLedgerStore(db));
    await ledger.createAccount({ id: 'meter', kind: 'device', name: 'meter' }).durable;
    const registry = new DeviceRegistry(ledger);
    await registry.load();
    await registry.register({ deviceId: MOVED, accountId: 'meter', name: 'moved' });
    await registry.acceptCounter(MOVED, 9).durable;
    await ledger.putRecords([registry.takeEventSeq(MOVED).record]);
    await ledger.putRecords([registry.takeEventSeq(MOVED).record]);
    await registry.register({ deviceId: GONE, accountId: 'meter', name: 'gone' });
    await registry.revoke(GONE);
    await ledger.close();
    await db.close();
    return dataDir;
  }

  const check = async (counters: PostgresDeviceCounters): Promise<void> => {
    expect(await counters.advance(MOVED, 9)).toEqual({ accepted: false, last: 9, revoked: false });
    expect(await counters.nextEventSeq(MOVED, 1)).toBe(3);
    expect(await counters.advance(GONE, 1)).toEqual({ accepted: false, last: 0, revoked: true });
    expect(await counters.advance(MOVED, 10)).toEqual({ accepted: true });
  };

  /** A fresh database with that store exported from LevelDB and imported (`coulomb store`). */
  const imported = async (name: string): Promise<Sql> => {
    const file = join(await levelStore(), 'store.ndjson');
    await exportLevelStore(dirname(file), file);
    const sql = postgres(await createTestDatabase(inject('postgresUrl'), name), { max: 2, onnotice: false });
    await importExport(sql, readLines(file), log);
    return sql;
  };

  it('a store moved from LevelDB keeps its devices’ counters, event numbers and revocations', async () => {
    const sql = await imported('device_counters_move');
    try {
      await check(new PostgresDeviceCounters(sql));
    } finally {
      await sql.end();
    }
  });

  it('migration 6 takes them from the device records already in the database', async () => {
    const sql = await imported('device_counters_seed');
    try {
      // As if the records had been there at version 4, before the gateway that has 6.
      await sql`DROP TABLE device_counters`;
      await sql`DELETE FROM schema_migrations WHERE version = 6`;
      expect(await migrate(sql)).toEqual([6]);
      await check(new PostgresDeviceCounters(sql));
    } finally {
      await sql.end();
    }
  });
});
