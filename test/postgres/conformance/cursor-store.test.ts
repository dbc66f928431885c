import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { InvoiceCursorStore } from '../../../src/lightning/types.js';
import { LevelCursorStore } from '../../../src/storage/level-cursor-store.js';
import { openDatabase, type Database } from '../../../src/storage/level-db.js';
import { PostgresCursorStore } from '../../../src/storage/postgres/postgres-cursor-store.js';
import { migrate } from '../../../src/storage/postgres/migrations.js';
import { createTestDatabase } from '../../support/postgres.js';

/**
 * The duty cursors (the LND invoice subscription's add and settle indexes) on both stores: the
 * same contract on LevelDB (the embedded default) and on PostgreSQL (shared by the instances, read
 * by whichever becomes leader). `fresh` gives a new empty location and an opener for it; opening
 * again is a restart (or, on PostgreSQL, another instance).
 */
interface Backend {
  name: string;
  fresh(): Promise<(name?: string) => Promise<InvoiceCursorStore>>;
  cleanup(): Promise<void>;
}

function levelBackend(): Backend {
  const dirs: string[] = [];
  const open: Database[] = [];
  return {
    name: 'LevelDB',
    async fresh() {
      const dir = mkdtempSync(join(tmpdir(), 'coulomb-cursor-'));
      dirs.push(dir);
      let current: Database | undefined;
      return async (name) => {
        await current?.close();
        current = await openDatabase(dir);
        open.push(current);
        return name === undefined ? new LevelCursorStore(current) : new LevelCursorStore(current, name);
      };
    },
    async cleanup() {
      for (const db of open) await db.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

const pools: Sql[] = [];
let databases = 0;
async function postgresDatabase(): Promise<string> {
  const url = await createTestDatabase(inject('postgresUrl'), `cursor_${++databases}`);
  const sql = postgres(url, { max: 1, onnotice: false });
  pools.push(sql);
  await migrate(sql);
  return url;
}
const pool = (url: string): Sql => {
  const sql = postgres(url, { max: 2, onnotice: false });
  pools.push(sql);
  return sql;
};

function postgresBackend(): Backend {
  return {
    name: 'PostgreSQL',
    async fresh() {
      const url = await postgresDatabase();
      return async (name) =>
        name === undefined ? new PostgresCursorStore(pool(url)) : new PostgresCursorStore(pool(url), name);
    },
    async cleanup() {},
  };
}

const backends = [levelBackend(), postgresBackend()];
afterAll(async () => {
  for (const b of backends) await b.cleanup();
  await Promise.all(pools.map((p) => p.end()));
});

describe.each(backends)('InvoiceCursorStore conformance: $name', (backend) => {
  it('starts at zero on a new store', async () => {
    const open = await backend.fresh();
    expect(await (await open()).load()).toEqual({ addIndex: 0, settleIndex: 0 });
  });

  it('keeps what was saved across a restart, and the latest save wins', async () => {
    const open = await backend.fresh();
    const first = await open();
    await first.save({ addIndex: 5, settleIndex: 2 });
    await first.save({ addIndex: 9, settleIndex: 4 });
    expect(await first.load()).toEqual({ addIndex: 9, settleIndex: 4 });
    expect(await (await open()).load()).toEqual({ addIndex: 9, settleIndex: 4 });
  });

  it('keeps cursors of different names apart', async () => {
    const open = await backend.fresh();
    const invoices = await open();
    await invoices.save({ addIndex: 3, settleIndex: 1 });
    const other = await open('duty/other');
    expect(await other.load()).toEqual({ addIndex: 0, settleIndex: 0 });
    await other.save({ addIndex: 7, settleIndex: 7 });
    expect(await (await open()).load()).toEqual({ addIndex: 3, settleIndex: 1 });
    expect(await (await open('duty/other')).load()).toEqual({ addIndex: 7, settleIndex: 7 });
  });

  it('holds indexes beyond 32 bits', async () => {
    const open = await backend.fresh();
    const store = await open();
    await store.save({ addIndex: 2 ** 40 + 1, settleIndex: 2 ** 33 });
    expect(await (await open()).load()).toEqual({ addIndex: 2 ** 40 + 1, settleIndex: 2 ** 33 });
  });
});

describe('the invoice cursor shared by several instances on PostgreSQL', () => {
  it('a leader that is behind cannot move the cursor back under another', async () => {
    const url = await postgresDatabase();
    const a = new PostgresCursorStore(pool(url));
    const b = new PostgresCursorStore(pool(url));
    await a.save({ addIndex: 10, settleIndex: 8 });
    // b took over late with an older view and saves what it handled.
    await b.save({ addIndex: 6, settleIndex: 5 });
    expect(await a.load()).toEqual({ addIndex: 10, settleIndex: 8 });
    await b.save({ addIndex: 12, settleIndex: 7 });
    expect(await b.load()).toEqual({ addIndex: 12, settleIndex: 8 });
  });

  it('many concurrent saves from two instances end at the highest of each index', async () => {
    const url = await postgresDatabase();
    const a = new PostgresCursorStore(pool(url));
    const b = new PostgresCursorStore(pool(url));
    const saves = [];
    for (let i = 1; i <= 40; i++) {
      saves.push(a.save({ addIndex: i * 2, settleIndex: i }));
      saves.push(b.save({ addIndex: i, settleIndex: i * 2 }));
    }
    await Promise.all(saves);
    expect(await a.load()).toEqual({ addIndex: 80, settleIndex: 80 });
  });
});
