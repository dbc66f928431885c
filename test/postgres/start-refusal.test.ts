import postgres from 'postgres';
import { describe, expect, inject, it } from 'vitest';
import { envOverrides, loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/logger.js';
import { startGateway } from '../../src/main.js';
import { MIGRATIONS } from '../../src/storage/postgres/migrations.js';
import { createTestDatabase } from '../support/postgres.js';

describe('coulomb start with a database URL', () => {
  it('applies the migrations, then refuses with DATABASE_URL_NOT_SUPPORTED_YET before touching LND', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'start_refusal');
    const config = loadConfig({ env: envOverrides({ COULOMB_DATABASE_URL: url }) });
    expect(config.databaseUrl).toBe(url);
    await expect(startGateway(config, createLogger('silent'))).rejects.toMatchObject({
      code: 'DATABASE_URL_NOT_SUPPORTED_YET',
    });
    const sql = postgres(url, { max: 1, onnotice: false });
    try {
      const rows = await sql<{ version: number }[]>`SELECT version FROM schema_migrations ORDER BY version`;
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    } finally {
      await sql.end();
    }
  });
});
