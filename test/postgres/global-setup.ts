import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgres } from '../support/postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the maintenance database of the run's PostgreSQL server. */
    postgresUrl: string;
  }
}

/**
 * One PostgreSQL server for the whole `postgres` project run, in its own directory and on its own
 * port (COULOMB_TEST_PG_DIR, COULOMB_TEST_PG_PORT; a temporary directory and a free port by
 * default); vitest runs the returned teardown whether tests passed or failed.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const port = process.env['COULOMB_TEST_PG_PORT'];
  const server = await startPostgres({
    dir: process.env['COULOMB_TEST_PG_DIR'] ?? join(tmpdir(), `coulomb-pg-${process.pid}`),
    ...(port !== undefined ? { port: Number(port) } : {}),
  });
  project.provide('postgresUrl', server.url);
  return () => server.stop();
}
