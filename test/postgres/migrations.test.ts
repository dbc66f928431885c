import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS, migrate, type Migration } from '../../src/storage/postgres/migrations.js';
import { createTestDatabase } from '../support/postgres.js';

describe('PostgreSQL migrations', () => {
  let url: string;
  const pools: Sql[] = [];
  const pool = (): Sql => {
    const sql = postgres(url, { max: 2, onnotice: false });
    pools.push(sql);
    return sql;
  };

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'migrations');
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
  });

  it('three runners starting at once apply each migration exactly once', async () => {
    // A slow first migration keeps the others waiting on the advisory lock while it runs.
    const slow: Migration[] = [
      { version: 1, name: 'slow', sql: 'SELECT pg_sleep(0.5); CREATE TABLE probe (n int)' },
      ...MIGRATIONS.map((m) => ({ ...m, version: m.version + 1 })),
    ];
    const results = await Promise.all([migrate(pool(), slow), migrate(pool(), slow), migrate(pool(), slow)]);
    const all = results.flat().sort((a, b) => a - b);
    expect(all).toEqual(slow.map((m) => m.version));
    const sql = pool();
    const rows = await sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
    expect(rows.map((r) => r.version)).toEqual(slow.map((m) => m.version));
    // A later start applies nothing.
    expect(await migrate(sql, slow)).toEqual([]);
  });

  it('refuses a database migrated by a newer gateway', async () => {
    const sql = postgres(await createTestDatabase(inject('postgresUrl'), 'migrations_new'), {
      max: 1,
      onnotice: false,
    });
    pools.push(sql);
    await migrate(sql);
    const older = MIGRATIONS.slice(0, 1);
    await expect(migrate(sql, older)).rejects.toMatchObject({ code: 'DATABASE_SCHEMA_TOO_NEW' });
  });

  it('a failed migration leaves nothing behind and is applied on the next start', async () => {
    const sql = postgres(await createTestDatabase(inject('postgresUrl'), 'migrations_fail'), {
      max: 1,
      onnotice: false,
    });
    pools.push(sql);
    const broken: Migration[] = [{ version: 1, name: 'half', sql: 'CREATE TABLE half (n int); SELECT 1/0' }];
    await expect(migrate(sql, broken)).rejects.toThrow(/division by zero/);
    expect(await sql`SELECT to_regclass('half') AS t`).toEqual([{ t: null }]);
    expect(await migrate(sql, MIGRATIONS)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  it('applies a version missing below the newest one (migrations merged from two branches)', async () => {
    const sql = postgres(await createTestDatabase(inject('postgresUrl'), 'migrations_gap'), {
      max: 1,
      onnotice: false,
    });
    pools.push(sql);
    const one: Migration = { version: 1, name: 'one', sql: 'CREATE TABLE one (n int)' };
    const three: Migration = { version: 3, name: 'three', sql: 'CREATE TABLE three (n int)' };
    const two: Migration = { version: 2, name: 'two', sql: 'CREATE TABLE two (n int)' };
    expect(await migrate(sql, [one, three])).toEqual([1, 3]);
    expect(await migrate(sql, [one, two, three])).toEqual([2]);
    const rows = await sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3]);
  });
});
