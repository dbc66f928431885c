import { execFileSync, spawnSync } from 'node:child_process';

/**
 * A private network namespace (`unshare --net`, root only) in which a client can be cut off from
 * a server without either side hearing of it: the kernel drops every packet to and from the
 * client's own loopback address (`blackhole` routing rules), no FIN, no RST, and the peer's TCP
 * keepalive probes go unanswered, as when a host vanishes from the network. A TCP relay in user
 * space cannot do this (its own kernel answers the probes, and it closes one side when the other
 * closes). Only the namespace's own loopback exists, so a server in it may listen on `0.0.0.0`
 * and each client reach it through an address of its own, `127.0.1.<n>`; the server and the
 * clients end with the namespace.
 */
const MARK = 'COULOMB_PRIVATE_NETWORK';

/** Whether this process runs in the private namespace `runInPrivateNetwork` made. */
export function inPrivateNetwork(): boolean {
  return process.env[MARK] === '1';
}

/** The command that runs a Node script (with tsx) in a new private network namespace. */
export function privateNetworkCommand(script: string, args: string[] = []): { file: string; args: string[] } {
  return {
    file: 'unshare',
    args: ['--net', '--', process.execPath, '--import', 'tsx', script, ...args],
  };
}

/** The environment for that command: marks the namespace as private. */
export function privateNetworkEnv(): NodeJS.ProcessEnv {
  return { ...process.env, [MARK]: '1' };
}

/** Runs this script again in a private namespace, waits, and returns its exit status. */
export function rerunInPrivateNetwork(): number {
  const command = privateNetworkCommand(process.argv[1]!, process.argv.slice(2));
  const r = spawnSync(command.file, command.args, { stdio: 'inherit', env: privateNetworkEnv() });
  if (r.error) console.error(`unshare --net failed (root is needed): ${r.error.message}`);
  return r.status ?? 1;
}

/** Whether this machine lets us make one (root, `unshare` and `ip` installed). */
export function canMakePrivateNetwork(): boolean {
  return spawnSync('unshare', ['--net', '--', 'ip', 'link', 'set', 'lo', 'up']).status === 0;
}

const ip = (...args: string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
};

/**
 * In the private namespace: loopback up, and the `local` routing table consulted after the cut's
 * rules (preference 10 before 100), so that they apply to loopback addresses too.
 */
export function prepareLoopback(): void {
  if (!inPrivateNetwork())
    throw new Error('not in a private network namespace: run it through unshare --net');
  ip('link', 'set', 'lo', 'up');
  ip('rule', 'add', 'pref', '100', 'lookup', 'local');
  ip('rule', 'del', 'pref', '0', 'lookup', 'local');
}

/** The loopback address client `n` (1-250) reaches the server through. */
export function clientAddress(n: number): string {
  if (!Number.isInteger(n) || n < 1 || n > 250) throw new Error(`no client address for ${n}`);
  return `127.0.1.${n}`;
}

/** From now on every packet to or from `address` is dropped, silently. */
export function cutOff(address: string): void {
  ip('rule', 'add', 'pref', '10', 'to', address, 'blackhole');
  ip('rule', 'add', 'pref', '10', 'from', address, 'blackhole');
}

/** Undoes `cutOff`. */
export function reconnect(address: string): void {
  ip('rule', 'del', 'pref', '10', 'to', address, 'blackhole');
  ip('rule', 'del', 'pref', '10', 'from', address, 'blackhole');
}
