import type { Command } from 'commander';
import { CliError } from './api-client.js';

/** The PostgreSQL URL: the flag, else COULOMB_DATABASE_URL (never printed: it may hold a password). */
function databaseUrl(flag: string | undefined): string {
  const url = flag ?? process.env['COULOMB_DATABASE_URL'];
  if (url === undefined || url === '')
    throw new CliError('--database-url (or COULOMB_DATABASE_URL) is required');
  return url;
}

/**
 * `coulomb store export|import|verify`: moves a LevelDB store into PostgreSQL through a portable
 * NDJSON file (src/storage/export/format.ts). Each action loads its storage modules (LevelDB,
 * postgres.js) only when it runs, so the CLI's other commands do not.
 */
export function registerStoreCommands(program: Command): void {
  const store = program
    .command('store')
    .description('move the embedded LevelDB store into PostgreSQL (export, import, verify)');

  store
    .command('export')
    .description(
      'write everything the LevelDB store holds to a portable NDJSON file (the gateway must be stopped)',
    )
    .requiredOption('--data-dir <dir>', "the gateway's data directory (or its LevelDB directory)")
    .option('--out <file>', 'the export file (default: stdout)')
    .action(async (opts: { dataDir: string; out?: string }) => {
      const { exportLevelStore, formatSummary } = await import('../storage/export/move.js');
      const summary = await exportLevelStore(opts.dataDir, opts.out);
      process.stderr.write(
        `exported${opts.out !== undefined ? ` to ${opts.out}` : ''}:\n${formatSummary(summary)}\n`,
      );
    });

  store
    .command('import')
    .description('import an export into an empty PostgreSQL database (one transaction), then verify it')
    .option('--database-url <url>', 'PostgreSQL URL (default: COULOMB_DATABASE_URL)')
    .option('--in <file>', 'the export file (default: stdin)')
    .action(async (opts: { databaseUrl?: string; in?: string }) => {
      const url = databaseUrl(opts.databaseUrl);
      const [move, pg, { createLogger }] = await Promise.all([
        import('../storage/export/move.js'),
        import('../storage/postgres/postgres-import.js'),
        import('../logger.js'),
      ]);
      const log = createLogger('info', { pretty: process.stdout.isTTY === true });
      const target = await pg.importIntoPostgres(url, move.readLines(opts.in), log);
      process.stdout.write(
        `imported and verified (counts and digests match):\n${move.formatSummary(target)}\n`,
      );
    });

  store
    .command('verify')
    .description('compare counts and digests per kind of PostgreSQL with an export file or a LevelDB store')
    .option('--database-url <url>', 'PostgreSQL URL (default: COULOMB_DATABASE_URL)')
    .option('--in <file>', 'the export file to compare with')
    .option('--data-dir <dir>', 'the LevelDB store to compare with (the gateway must be stopped)')
    .action(async (opts: { databaseUrl?: string; in?: string; dataDir?: string }) => {
      const url = databaseUrl(opts.databaseUrl);
      if ((opts.in === undefined) === (opts.dataDir === undefined))
        throw new CliError('give one of --in <file> or --data-dir <dir>');
      const [move, pg] = await Promise.all([
        import('../storage/export/move.js'),
        import('../storage/postgres/postgres-import.js'),
      ]);
      const source =
        opts.dataDir !== undefined
          ? await move.summarizeLevelStore(opts.dataDir)
          : await move.checkExport(move.readLines(opts.in));
      const target = await pg.summarizePostgres(url);
      move.assertSameState(source, target);
      process.stdout.write(`verified (counts and digests match):\n${move.formatSummary(target)}\n`);
    });
}
