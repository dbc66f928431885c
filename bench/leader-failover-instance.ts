/**
 * One gateway instance's leader election for bench/leader-failover.ts, in a process of its own:
 * the real `AdvisoryLockLeader` with the production settings (1 s poll, 3 s query timeout, the
 * session's TCP keepalives), reporting to the parent over IPC when it is elected or deposed, with
 * the time. On the message `close` it closes the election (a clean stop, releasing the lock) and
 * exits. It exits as well when the parent goes away.
 *
 *   node --import tsx bench/leader-failover-instance.ts <database url>   (forked with IPC)
 */
import { AdvisoryLockLeader } from '../src/storage/postgres/advisory-lock-leader.js';

/** What an instance tells the parent; `at` is epoch milliseconds with sub-millisecond precision. */
export type InstanceReport =
  | { kind: 'ready'; at: number }
  | { kind: 'elected'; at: number }
  | { kind: 'deposed'; at: number; reason: string }
  | { kind: 'closing'; at: number };

const now = (): number => performance.timeOrigin + performance.now();
const report = (r: InstanceReport): void => {
  process.send?.(r);
};

const url = process.argv[2];
if (url === undefined || process.send === undefined) {
  console.error('usage: forked by bench/leader-failover.ts with the database URL as argument');
  process.exit(2);
}

const leader = new AdvisoryLockLeader(url);
leader.start({
  elected: () => report({ kind: 'elected', at: now() }),
  deposed: (reason) => report({ kind: 'deposed', at: now(), reason }),
});
process.on('message', (message) => {
  if (message !== 'close') return;
  report({ kind: 'closing', at: now() });
  void leader.close().finally(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
report({ kind: 'ready', at: now() });
