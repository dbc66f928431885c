import type { ChildProcess } from 'node:child_process';
import { spawnGateway } from './gateway-spawn.js';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres, { type Sql } from 'postgres';
import { createTestDatabase, gatewayDatabase, startPostgres, type RunningPostgres } from './postgres.js';
import { startMosquitto, type RunningMosquitto } from './mosquitto.js';
import { node } from './regtest.js';

/** The election's log line of an instance that takes the leadership (src/storage/postgres/advisory-lock-leader.ts). */
export const LEADS_LINE = 'leader election: this instance leads';

/** A free TCP port on 127.0.0.1 (the OS picks one; it is closed again before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
}

/**
 * One `coulomb start` process of a cluster (`node --import tsx src/cli/index.ts start`, as
 * test/support/gateway-spawn.ts runs it), on its own data dir and ports chosen up front, so that
 * its URL (advertised to the other instances) is known before it starts and stays the same across
 * restarts. Its output is kept; the election's log lines are timed as they arrive.
 */
export class InstanceProcess {
  private child: ChildProcess | undefined;
  private out = '';
  /** Every start's output, for `COULOMB_TEST_CLUSTER_LOGS`. */
  private history = '';
  private pending = '';
  /** When (Date.now(), in this process) each start's "this instance leads" line arrived. */
  readonly leadLines: number[] = [];
  /** Exit codes / signals of the processes of this instance that ended. */
  readonly exits: { code: number | null; signal: NodeJS.Signals | null }[] = [];

  constructor(
    readonly index: number,
    readonly dataDir: string,
    readonly port: number,
    readonly proxyPort: number,
    private readonly env: Record<string, string>,
    private readonly operatorKey: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get proxyUrl(): string {
    return `http://127.0.0.1:${this.proxyPort}`;
  }

  get running(): boolean {
    const c = this.child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Whether this process (since its last start) said it leads. */
  get leads(): boolean {
    return this.running && this.leadLines.length > 0;
  }

  output(): string {
    return this.out;
  }

  /** The output of every start of this instance so far. */
  allOutput(): string {
    return this.history + this.out;
  }

  /** Starts the process; resolves once it listens, rejects if it exits first. */
  start(): Promise<void> {
    const alice = node('alice');
    this.history += this.out;
    this.out = '';
    this.pending = '';
    this.leadLines.length = 0;
    const child = spawnGateway({
      host: '127.0.0.1',
      port: this.port,
      dataDir: this.dataDir,
      operatorKey: this.operatorKey,
      lnd: { socket: alice.grpcSocket, cert: alice.tlsCert, macaroon: alice.adminMacaroon },
      logLevel: 'info',
      env: {
        ...this.env,
        COULOMB_PROXY_PORT: String(this.proxyPort),
        COULOMB_ADVERTISE_URL: this.url,
      },
    });
    this.child = child;
    child.stdout!.on('data', (c: Buffer) => this.take(c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.out += c.toString()));
    child.once('exit', (code, signal) => this.exits.push({ code, signal }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`instance ${this.index} did not start within 120 s:\n${this.tail()}`)),
        120_000,
      );
      const check = (): void => {
        if (/listening on http:\/\/\S+/.test(this.out)) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.off('exit', exited);
          resolve();
        }
      };
      const exited = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`instance ${this.index} exited (${code}) during start:\n${this.tail()}`));
      };
      child.stdout!.on('data', check);
      child.once('exit', exited);
    });
  }

  /** Stdout is one JSON log record a line (not a terminal) plus the banner; lines are read whole. */
  private take(chunk: string): void {
    this.out += chunk;
    this.pending += chunk;
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, nl);
      this.pending = this.pending.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        const record = JSON.parse(line) as { msg?: unknown };
        if (record.msg === LEADS_LINE) this.leadLines.push(Date.now());
      } catch {
        // Not a log record.
      }
    }
  }

  /** The end of the output, for error messages. */
  tail(chars = 4000): string {
    return this.out.slice(-chars);
  }

  /** SIGKILL: nothing flushed, no shutdown hook. Resolves with Date.now() taken just before the signal. */
  async kill9(): Promise<number> {
    const child = this.child;
    const at = Date.now();
    if (!child || !this.running) return at;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    return at;
  }

  /** SIGTERM (a clean stop), SIGKILL if it has not exited after 15 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(timer);
  }

  /** Synchronous last resort (process exit): SIGKILL. */
  killNow(): void {
    if (this.running) this.child!.kill('SIGKILL');
  }

  /** Calls this instance's API with the operator key (a failed connection names the instance). */
  async api(method: string, path: string, body?: unknown): Promise<ApiAnswer> {
    try {
      return await call(this.url, this.operatorKey, method, path, body);
    } catch (err) {
      throw new Error(
        `${method} ${path} on instance ${this.index + 1} (${this.running ? 'running' : 'not running'}): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
}

async function call(
  base: string,
  operatorKey: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${operatorKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}

export interface ProcessClusterOptions {
  /** Names the directories and the database. */
  name: string;
  instances: number;
  operatorKey: string;
  /** Extra environment of every instance (COULOMB_PROXY_CONFIG...). */
  env?: Record<string, string>;
}

/**
 * Several real `coulomb start` processes on ONE PostgreSQL server of their own (a database made
 * for the test) and ONE LND (regtest alice), with one external MQTT broker (Mosquitto) as a
 * deployment of several instances needs. Each instance: its own data dir and ports, the same
 * operator key, database URL and broker, `COULOMB_ADVERTISE_URL` = its own base URL.
 *
 * The PostgreSQL server lives under `$COULOMB_TEST_PG_DIR/<name>` (port `$COULOMB_TEST_PG_PORT`)
 * when set, else in a temporary directory on a free port. `close()` kills every process (even
 * after a failed test), stops the broker and the server, and removes every directory; with
 * `COULOMB_TEST_CLUSTER_LOGS=<dir>` it first writes each instance's output there.
 */
export class ProcessCluster {
  readonly instances: InstanceProcess[] = [];
  private readonly exitHook = (): void => {
    for (const i of this.instances) i.killNow();
  };

  private constructor(
    readonly server: RunningPostgres,
    readonly databaseUrl: string,
    readonly admin: Sql,
    readonly mosquitto: RunningMosquitto,
    private readonly root: string,
    readonly operatorKey: string,
  ) {
    process.once('exit', this.exitHook);
  }

  /** What the tests read of the gateway database (balances, invoice credits, the leader lock). */
  get db(): ReturnType<typeof gatewayDatabase> {
    return gatewayDatabase(this.admin);
  }

  static async open(o: ProcessClusterOptions): Promise<ProcessCluster> {
    const root = mkdtempSync(join(tmpdir(), `coulomb-${o.name}-`));
    const pgDir = process.env['COULOMB_TEST_PG_DIR'];
    const pgPort = process.env['COULOMB_TEST_PG_PORT'];
    const server = await startPostgres({
      // Not inside `root` (mode 0700, this user's): the server runs as the `postgres` user.
      dir: pgDir ? join(pgDir, o.name) : join(tmpdir(), `coulomb-${o.name}-postgres-${process.pid}`),
      ...(pgPort !== undefined ? { port: Number(pgPort) } : {}),
    });
    let mosquitto: RunningMosquitto | undefined;
    try {
      const databaseUrl = await createTestDatabase(server.url, o.name.replace(/[^a-z0-9]/gi, '_'));
      mosquitto = await startMosquitto();
      const admin = postgres(databaseUrl, { max: 2, onnotice: false });
      const cluster = new ProcessCluster(server, databaseUrl, admin, mosquitto, root, o.operatorKey);
      for (let k = 0; k < o.instances; k++) {
        const dataDir = join(root, `instance-${k + 1}`);
        cluster.instances.push(
          new InstanceProcess(
            k,
            dataDir,
            await freePort(),
            await freePort(),
            {
              COULOMB_DATABASE_URL: databaseUrl,
              COULOMB_MQTT_URL: mosquitto.url,
              ...o.env,
            },
            o.operatorKey,
          ),
        );
      }
      return cluster;
    } catch (err) {
      await mosquitto?.stop();
      await server.stop();
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** The running instances that said they lead. */
  leaders(): InstanceProcess[] {
    return this.instances.filter((i) => i.leads);
  }

  /** The instances running now. */
  live(): InstanceProcess[] {
    return this.instances.filter((i) => i.running);
  }

  /** The leader's address as the elected instance published it (`cluster_leader`), if any. */
  async advertisedLeader(): Promise<string | undefined> {
    const [row] = await this.admin<{ url: string }[]>`SELECT url FROM cluster_leader WHERE id = 1`.catch(
      () => [] as { url: string }[],
    );
    return row?.url;
  }

  async close(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.stop().catch(() => undefined)));
    // The instances' logs, kept when asked for (a failed run's evidence).
    const logs = process.env['COULOMB_TEST_CLUSTER_LOGS'];
    if (logs) {
      mkdirSync(logs, { recursive: true });
      for (const i of this.instances) writeFileSync(join(logs, `instance-${i.index + 1}.log`), i.allOutput());
    }
    process.off('exit', this.exitHook);
    await this.admin.end().catch(() => undefined);
    await this.mosquitto.stop().catch(() => undefined);
    await this.server.stop().catch(() => undefined);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/**
 * Polls `probe` until it returns `{ done }` or the time runs out; the error then says what the
 * last poll was still waiting for (the probe's `{ waiting }`).
 */
export async function until<T>(
  probe: () => Promise<{ done: T } | { waiting: string }>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await probe();
    if ('done' in r) return r.done;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: still ${r.waiting}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
