import postgres, { type Sql } from 'postgres';
import type { Logger } from 'pino';
import type { LeaderElection, LeadershipListener } from '../../cluster/leader.js';
import { MIGRATION_LOCK_KEY } from './migrations.js';
import { writeLeaderAddress } from './postgres-cluster-directory.js';

/**
 * The application name of every instance's election session, followed by the instance's id: what
 * tells other instances it is alive (`PostgresUsageOrphans.liveInstances`).
 */
export const LEADER_APPLICATION = 'coulomb-leader';

/** The advisory lock key of the leadership (any bigint, fixed, not the migration runner's). */
export const LEADER_LOCK_KEY = MIGRATION_LOCK_KEY + 1n;

export interface AdvisoryLockLeaderOptions {
  /** The lock's key: instances with one key elect one leader (default LEADER_LOCK_KEY). */
  key?: bigint;
  /** How often a follower tries the lock and a leader checks it still holds it (ms, default 1000). */
  pollMs?: number;
  /** A campaign or heartbeat query not answered within this is a lost connection (ms, default 3000). */
  queryTimeoutMs?: number;
  log?: Logger;
  /** This instance's id, in the session's application name (default: none). */
  instanceId?: string;
}

/**
 * Leader election through a PostgreSQL session-level advisory lock. Each instance keeps one
 * dedicated connection (not from a pool, no lifetime limit) and tries `pg_try_advisory_lock` on it
 * every `pollMs`; the one that gets it leads. The lock belongs to the session: when the leader's
 * process dies or its connection is lost, the server releases it and the next follower to poll
 * takes over (well within 10 s at the default 1 s poll).
 *
 * The leader checks every `pollMs` that its session still holds the lock (a heartbeat query on
 * `pg_locks`), and steps down at once, before the next poll, when the connection closes, the
 * heartbeat fails, finds the lock gone or gets no answer within `queryTimeoutMs`; it then drops
 * the connection (releasing anything the server still holds for it) and campaigns again on a new
 * one after three poll periods, so that a follower whose connection is sound takes over first.
 * The session asks the server for short TCP keepalives and a TCP user timeout, so a leader host
 * that vanishes without closing its socket frees the lock 6 s after the server last heard from
 * it, not after the kernel's two hours (bench:failover measures it).
 *
 * The lock does not fence a leader that is cut off but not yet aware of it (it acts until its
 * next heartbeat fails): what the duties write must stay correct with two leaders for a moment,
 * as crediting is (one ledger transfer per payment hash, enforced by the database).
 */
export class AdvisoryLockLeader implements LeaderElection {
  private readonly key: bigint;
  private readonly pollMs: number;
  private readonly queryTimeoutMs: number;
  private listener: LeadershipListener | undefined;
  private sql: Sql | undefined;
  /** Bumped whenever the connection is dropped: answers from an older one are ignored. */
  private generation = 0;
  private leading = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  /** Whether the last campaign failed (logged once per run of failures). */
  private failing = false;
  /** A deposed leader campaigns again only from then (ms): a healthy follower goes first. */
  private holdOffUntil = 0;
  /** Where this instance serves, published while it leads (`advertise`). */
  private address: { instanceId: string; url: string } | undefined;

  constructor(
    private readonly url: string,
    options: AdvisoryLockLeaderOptions = {},
  ) {
    this.key = options.key ?? LEADER_LOCK_KEY;
    this.pollMs = options.pollMs ?? 1000;
    this.queryTimeoutMs = options.queryTimeoutMs ?? 3000;
    this.log = options.log;
    this.applicationName =
      options.instanceId === undefined ? LEADER_APPLICATION : `${LEADER_APPLICATION} ${options.instanceId}`;
  }

  private readonly applicationName: string;

  private readonly log: Logger | undefined;

  get isLeader(): boolean {
    return this.leading;
  }

  start(listener: LeadershipListener): void {
    this.listener = listener;
    this.schedule(0);
  }

  resign(reason: string): void {
    this.drop(reason);
  }

  /**
   * Publishes where this instance serves while it leads (`cluster_leader`), written on the session
   * that holds the lock: a write that fails is a lost session, and the leadership goes with it.
   */
  advertise(instanceId: string, url: string): void {
    this.address = { instanceId, url };
    if (this.leading) void this.publish();
  }

  private async publish(): Promise<void> {
    const address = this.address;
    if (!address) return;
    await this.query((sql) => writeLeaderAddress(sql, address.instanceId, address.url));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const sql = this.sql;
    this.sql = undefined;
    this.generation += 1;
    if (this.leading) {
      this.leading = false;
      this.listener?.deposed('closed');
    }
    // Ending the session releases the lock.
    await sql?.end({ timeout: 1 });
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    try {
      if (this.leading) await this.heartbeat();
      else await this.campaign();
    } finally {
      this.schedule(this.pollMs);
    }
  }

  private connection(): { sql: Sql; generation: number } {
    if (!this.sql) {
      const generation = ++this.generation;
      this.sql = postgres(this.url, {
        max: 1,
        max_lifetime: null,
        idle_timeout: null,
        onnotice: () => undefined,
        connection: {
          application_name: this.applicationName,
          // The server gives up on a silent peer 6 s after it last heard from it (keepalive
          // probes at 3, 4, 5 s; tcp_user_timeout also when its own data goes unacknowledged), so
          // a leader cut off without its socket closing is replaced well within 10 s, after it
          // stepped down itself (its heartbeat times out within poll + 3 s).
          tcp_keepalives_idle: 3,
          tcp_keepalives_interval: 1,
          tcp_keepalives_count: 3,
          tcp_user_timeout: 6000,
        },
        onclose: () => {
          if (generation === this.generation) this.drop('the leader connection closed');
        },
      });
    }
    return { sql: this.sql, generation: this.generation };
  }

  /** A query on the dedicated connection, or undefined once that connection was dropped. */
  private async query<T>(run: (sql: Sql) => Promise<T>): Promise<T | undefined> {
    const { sql, generation } = this.connection();
    let timer: NodeJS.Timeout | undefined;
    const answer = run(sql);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer from PostgreSQL within ${this.queryTimeoutMs} ms`)),
        this.queryTimeoutMs,
      );
    });
    try {
      const result = await Promise.race([answer, timeout]);
      return generation === this.generation ? result : undefined;
    } catch (err) {
      // The answer may still come (or fail) after a timeout: it is of no interest any more.
      answer.catch(() => undefined);
      if (generation === this.generation) this.drop(err instanceof Error ? err.message : String(err));
      if (!this.failing) this.log?.warn({ err }, 'leader election: PostgreSQL query failed; retrying');
      this.failing = true;
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private async campaign(): Promise<void> {
    if (Date.now() < this.holdOffUntil) return;
    const rows = await this.query(
      (sql) => sql<{ got: boolean }[]>`SELECT pg_try_advisory_lock(${this.key.toString()}::bigint) AS got`,
    );
    if (rows === undefined || this.closed) return;
    this.failing = false;
    if (rows[0]?.got !== true) return;
    this.leading = true;
    this.log?.info('leader election: this instance leads');
    await this.publish();
    if (!this.leading) return;
    this.listener?.elected();
  }

  private async heartbeat(): Promise<void> {
    const high = (this.key >> 32n).toString();
    const low = (this.key & 0xffffffffn).toString();
    const rows = await this.query(
      (sql) => sql<{ held: boolean }[]>`
        SELECT EXISTS (
          SELECT 1 FROM pg_locks
          WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
            AND classid = ${high}::oid AND objid = ${low}::oid AND objsubid = 1
        ) AS held`,
    );
    if (rows !== undefined && rows[0]?.held !== true) this.drop('the leader lock is no longer held');
  }

  /** Drops the connection (and with it the lock); a leader steps down at once. */
  private drop(reason: string): void {
    const sql = this.sql;
    this.sql = undefined;
    this.generation += 1;
    void sql?.end({ timeout: 0 }).catch(() => undefined);
    if (!this.leading) return;
    this.leading = false;
    this.holdOffUntil = Date.now() + 3 * this.pollMs;
    this.log?.warn({ reason }, 'leader election: this instance no longer leads');
    this.listener?.deposed(reason);
  }
}
