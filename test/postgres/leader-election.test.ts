import postgres, { type Sql } from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DutyRunner, type Duty } from '../../src/cluster/duties.js';
import type { LeadershipListener } from '../../src/cluster/leader.js';
import { createLogger } from '../../src/logger.js';
import { AdvisoryLockLeader } from '../../src/storage/postgres/advisory-lock-leader.js';
import { createTestDatabase, gatewayDatabase } from '../support/postgres.js';
import { eventually } from '../support/regtest.js';
import { TcpGate } from '../support/tcp-gate.js';

/** What one instance heard from its election. */
class Heard implements LeadershipListener {
  readonly events: string[] = [];
  elected(): void {
    this.events.push('elected');
  }
  deposed(reason: string): void {
    this.events.push(`deposed: ${reason}`);
  }
}

/** A duty that counts its starts and stops and says whether it runs. */
class CountingDuty implements Duty {
  starts = 0;
  stops = 0;
  constructor(readonly name: string) {}
  get running(): boolean {
    return this.starts > this.stops;
  }
  start(): void {
    this.starts += 1;
  }
  stop(): void {
    this.stops += 1;
  }
}

const TAKEOVER_DEADLINE_MS = 10_000;
const log = createLogger('silent');

describe('leader election through a PostgreSQL advisory lock', () => {
  let url: string;
  let admin: Sql;
  const leaders: AdvisoryLockLeader[] = [];
  const runners: DutyRunner[] = [];
  const gates: TcpGate[] = [];
  const leader = (at = url): AdvisoryLockLeader => {
    const l = new AdvisoryLockLeader(at, { pollMs: 200, queryTimeoutMs: 1000 });
    leaders.push(l);
    return l;
  };

  const holders = (): Promise<number[]> => gatewayDatabase(admin).leaderHolders();

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'leader');
    admin = postgres(url, { max: 1, onnotice: false });
  });
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.close()));
    await Promise.all(leaders.splice(0).map((l) => l.close()));
    await Promise.all(gates.splice(0).map((g) => g.close()));
  });
  afterAll(async () => {
    await admin.end();
  });

  it('of two instances one leads; when its backend is terminated the other leads within 10 s', async () => {
    const a = leader();
    const b = leader();
    const heardA = new Heard();
    const heardB = new Heard();
    a.start(heardA);
    b.start(heardB);
    const first = await eventually(() => (a.isLeader ? a : b.isLeader ? b : undefined), 5000, 'a leader');
    const [winner, loser] = first === a ? [a, b] : [b, a];
    const [heardWinner, heardLoser] = first === a ? [heardA, heardB] : [heardB, heardA];
    // A few more polls change nothing: one leader, one lock holder.
    await new Promise((r) => setTimeout(r, 1000));
    expect(winner.isLeader).toBe(true);
    expect(loser.isLeader).toBe(false);
    expect(heardLoser.events).toEqual([]);
    const [pid, ...others] = await holders();
    expect(others).toEqual([]);

    await admin`SELECT pg_terminate_backend(${pid!})`;
    const killedAt = Date.now();
    await eventually(() => (loser.isLeader ? true : undefined), TAKEOVER_DEADLINE_MS, 'the takeover');
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_DEADLINE_MS);
    expect(winner.isLeader).toBe(false);
    // Stepped down as soon as the connection went (closed, or its heartbeat query failed).
    expect(heardWinner.events).toHaveLength(2);
    expect(heardWinner.events[1]).toMatch(/^deposed: /);
    expect(heardLoser.events).toEqual(['elected']);
    // The old leader campaigns again on a new connection, and follows.
    await new Promise((r) => setTimeout(r, 1000));
    expect(winner.isLeader).toBe(false);
    expect((await holders()).length).toBe(1);
  });

  it('a leader that closes releases the lock at once for the next', async () => {
    const a = leader();
    a.start(new Heard());
    await eventually(() => (a.isLeader ? true : undefined), 5000, 'a leads');
    const b = leader();
    const heardB = new Heard();
    b.start(heardB);
    await new Promise((r) => setTimeout(r, 600));
    expect(b.isLeader).toBe(false);
    await a.close();
    await eventually(() => (b.isLeader ? true : undefined), TAKEOVER_DEADLINE_MS, 'b leads');
    expect(heardB.events).toEqual(['elected']);
  });

  it('a leader cut off from the database (no answers) steps down, and another takes over', async () => {
    const gate = await TcpGate.open(`127.0.0.1:${new URL(url).port}`);
    gates.push(gate);
    const through = new URL(url);
    through.port = gate.address.split(':')[1]!;
    const a = leader(through.toString());
    const heardA = new Heard();
    a.start(heardA);
    await eventually(() => (a.isLeader ? true : undefined), 5000, 'a leads');
    const b = leader();
    b.start(new Heard());
    gate.hold();
    await eventually(() => (a.isLeader ? undefined : true), TAKEOVER_DEADLINE_MS, 'a steps down');
    expect(heardA.events[1]).toMatch(/^deposed: no answer from PostgreSQL/);
    await eventually(() => (b.isLeader ? true : undefined), TAKEOVER_DEADLINE_MS, 'b leads');
    // While its connections are held, a cannot lead again.
    expect(a.isLeader).toBe(false);
  });

  it('duties run on the leader only, start on election and stop on losing it', async () => {
    const a = leader();
    const b = leader();
    const dutiesA = [new CountingDuty('invoices'), new CountingDuty('sweeps')];
    const dutiesB = [new CountingDuty('invoices'), new CountingDuty('sweeps')];
    const runA = new DutyRunner(a, dutiesA, log);
    await runA.start();
    await eventually(() => (dutiesA.every((d) => d.running) ? true : undefined), 5000, 'a runs its duties');
    const runB = new DutyRunner(b, dutiesB, log);
    runners.push(runA, runB);
    await runB.start();
    await new Promise((r) => setTimeout(r, 1000));
    expect(dutiesB.map((d) => d.starts)).toEqual([0, 0]);
    expect(runB.active).toEqual([]);
    expect(runA.active).toEqual(['invoices', 'sweeps']);

    const [pid] = await holders();
    await admin`SELECT pg_terminate_backend(${pid!})`;
    await eventually(
      () => (dutiesB.every((d) => d.running) ? true : undefined),
      TAKEOVER_DEADLINE_MS,
      'b takes over',
    );
    expect(dutiesA.map((d) => [d.starts, d.stops])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(runA.active).toEqual([]);
    expect(runB.active).toEqual(['invoices', 'sweeps']);
    // Closing the leader stops its duties and hands over to the other.
    await runB.close();
    expect(dutiesB.map((d) => [d.starts, d.stops])).toEqual([
      [1, 1],
      [1, 1],
    ]);
    await eventually(
      () => (dutiesA.every((d) => d.running) ? true : undefined),
      TAKEOVER_DEADLINE_MS,
      'a again',
    );
  });
});
