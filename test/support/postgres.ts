import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import postgres, { type Sql } from 'postgres';
import { LEADER_LOCK_KEY } from '../../src/storage/postgres/advisory-lock-leader.js';

const execFile = promisify(execFileCb);

/**
 * A throw-away PostgreSQL 15 cluster for tests: `initdb` as the `postgres` user in a directory of
 * its own, started with `pg_ctl` on its own port and unix socket directory (fsync on, the
 * default), trust authentication on 127.0.0.1 only, stopped (`pg_ctl stop -m fast`) and deleted
 * at the end. One per test run (test/postgres/global-setup.ts); each test file makes its own
 * database on it (`createTestDatabase`).
 */
export interface PostgresServerOptions {
  /** Parent directory; the cluster lives in `<dir>/data`, its socket in `<dir>/socket`. */
  dir: string;
  /** TCP port on 127.0.0.1; a free one is picked when absent. */
  port?: number;
  /**
   * The server's `listen_addresses` (default `127.0.0.1` only). A benchmark in a private network
   * namespace listens on more loopback addresses, one per client it may cut off.
   */
  listenAddresses?: string;
  /** More server settings (`name=value`, each passed as `-c`), e.g. a benchmark's statistics. */
  settings?: string[];
}

export interface RunningPostgres {
  /** URL of the `postgres` maintenance database (superuser `postgres`, no password). */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Debian's server binaries (`pg_config --bindir`), as check-prereqs.sh installs them. */
function binDir(): string {
  const r = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error('pg_config not found: install PostgreSQL 15 (bash scripts/check-prereqs.sh does it)');
  return r.stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

/** Runs a server binary as the `postgres` user (initdb and the server refuse to run as root). */
function asPostgres(bin: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return process.getuid?.() === 0
    ? execFile('runuser', ['-u', 'postgres', '--', bin, ...args], { timeout: 120_000 })
    : execFile(bin, args, { timeout: 120_000 });
}

/** Stops a cluster a crashed earlier run may have left running in `data` (its postmaster.pid). */
async function stopLeftover(bin: string, data: string): Promise<void> {
  if (!existsSync(join(data, 'postmaster.pid'))) return;
  await asPostgres(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
}

export async function startPostgres(options: PostgresServerOptions): Promise<RunningPostgres> {
  const bin = binDir();
  const dir = resolve(options.dir);
  const data = join(dir, 'data');
  const socket = join(dir, 'socket');
  await stopLeftover(bin, data);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(socket, { recursive: true });
  if (process.getuid?.() === 0) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
    chownSync(dir, uid, gid);
    chownSync(socket, uid, gid);
  }
  const port = options.port ?? (await freePort());
  await asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '--encoding=UTF8',
    '--locale=C',
    '--no-instructions',
  ]);
  const settings = [
    `-p ${port}`,
    `-k ${socket}`,
    `-c listen_addresses='${options.listenAddresses ?? '127.0.0.1'}'`,
    '-c fsync=on',
    '-c max_connections=200',
    ...(options.settings ?? []).map((s) => `-c ${s}`),
  ].join(' ');
  try {
    await asPostgres(join(bin, 'pg_ctl'), [
      'start',
      '-D',
      data,
      '-w',
      '-t',
      '60',
      '-l',
      join(dir, 'server.log'),
      '-o',
      settings,
    ]);
  } catch (err) {
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8') : '';
    throw new Error(
      `PostgreSQL did not start on port ${port}: ${(err as Error).message}\n${log.slice(-2000)}`,
    );
  }
  let stopped = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await asPostgres(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']).catch(
        async () => stopLeftover(bin, data),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database on the test server, named after the test file; returns its URL. */
export async function createTestDatabase(serverUrl: string, name: string): Promise<string> {
  const db = `t_${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${process.pid}_${Date.now()}`.slice(0, 63);
  const admin: Sql = postgres(serverUrl, { max: 1, onnotice: false });
  try {
    await admin.unsafe(`CREATE DATABASE "${db}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${db}`;
  return url.toString();
}

/**
 * What tests read of a gateway's PostgreSQL database: an account's posted balance, how many
 * posted credits an invoice got (ledger transfers under its `invoice:<hash>` key), and the
 * sessions holding the leader lock in this database (which `terminateLeader` ends).
 */
export function gatewayDatabase(sql: Sql) {
  const holders = async (): Promise<number[]> => {
    const rows = await sql<{ pid: number }[]>`
      SELECT pid FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid = ${(LEADER_LOCK_KEY >> 32n).toString()}::oid
        AND objid = ${(LEADER_LOCK_KEY & 0xffffffffn).toString()}::oid`;
    return rows.map((r) => r.pid);
  };
  return {
    async balance(accountId: string): Promise<bigint> {
      const [row] = await sql<{ b: string }[]>`
        SELECT credits_posted - debits_posted AS b FROM ledger_accounts WHERE id = ${accountId}`;
      return BigInt(row?.b ?? '0');
    },
    async invoiceCredits(paymentHash: string): Promise<number> {
      const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM ledger_keys k JOIN ledger_transfers t ON t.id = k.transfer_id
        WHERE k.key = ${`invoice:${paymentHash}`} AND t.state = 'posted'`;
      return row?.n ?? 0;
    },
    leaderHolders: holders,
    async terminateLeader(): Promise<void> {
      for (const pid of await holders()) await sql`SELECT pg_terminate_backend(${pid})`;
    },
  };
}
