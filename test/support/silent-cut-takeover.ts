/**
 * Run in a private network namespace (test/support/private-network.ts) by
 * test/postgres/leader-silent-cut.test.ts: a PostgreSQL server of its own, two leader elections
 * with the production settings, each through its own loopback address; once one leads (and both
 * have polled a few times), every packet between the leader and the server is dropped. Prints one
 * JSON line, `SilentCutResult`: when (after the cut) the other was elected and the cut-off one
 * stepped down, if at all within `--give-up` seconds. Stops the server in any case.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LeadershipListener } from '../../src/cluster/leader.js';
import { AdvisoryLockLeader } from '../../src/storage/postgres/advisory-lock-leader.js';
import { createTestDatabase, startPostgres } from './postgres.js';
import { clientAddress, cutOff, prepareLoopback } from './private-network.js';

export interface SilentCutResult {
  /** From the cut until the other election reported `elected` (ms); null if it did not. */
  takeoverMs: number | null;
  /** From the cut until the cut-off leader reported `deposed` (ms); null if it did not. */
  stepDownMs: number | null;
}

const { values } = parseArgs({ options: { 'give-up': { type: 'string', default: '30' } } });
const giveUpMs = Number(values['give-up']) * 1000;

class Times implements LeadershipListener {
  elected_: number | undefined;
  deposed_: number | undefined;
  elected(): void {
    this.elected_ = performance.now();
  }
  deposed(): void {
    this.deposed_ = performance.now();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

prepareLoopback();
const server = await startPostgres({
  dir: join(tmpdir(), `coulomb-pg-silent-cut-${process.pid}`),
  listenAddresses: '0.0.0.0',
});
const elections: AdvisoryLockLeader[] = [];
try {
  const url = new URL(await createTestDatabase(server.url, 'silent_cut'));
  const through = (n: number): string => {
    const u = new URL(url);
    u.hostname = clientAddress(n);
    return u.toString();
  };
  const times = [new Times(), new Times()];
  for (const [i, t] of times.entries()) {
    const election = new AdvisoryLockLeader(through(i + 1));
    elections.push(election);
    election.start(t);
  }
  const until = async (ok: () => boolean, what: string): Promise<void> => {
    const deadline = performance.now() + giveUpMs;
    while (!ok()) {
      if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await sleep(20);
    }
  };
  await until(() => elections.some((e) => e.isLeader), 'a leader');
  await sleep(2500);
  const leader = elections.findIndex((e) => e.isLeader);
  const other = times[1 - leader]!;
  const cutAt = performance.now();
  cutOff(clientAddress(leader + 1));
  await until(() => other.elected_ !== undefined, 'the takeover').catch(() => undefined);
  const since = (t: number | undefined): number | null => (t === undefined ? null : t - cutAt);
  const result: SilentCutResult = {
    takeoverMs: since(other.elected_),
    stepDownMs: since(times[leader]!.deposed_),
  };
  // The parent test reads this one line of the child process's stdout.
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await Promise.all(elections.map((e) => e.close().catch(() => undefined)));
  await server.stop();
}
