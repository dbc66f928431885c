import { spawn } from 'node:child_process';
import { openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';

/** Reads a pid file and returns the pid only if that process is alive and is ours (its command line names `marker`). */
export function runningPid(pidFile: string, marker: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return undefined; // zombie
    return cmdline.includes(marker) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts a daemon detached from this process, output appended to logFile, pid written to pidFile. */
export function startDaemon(bin: string, args: string[], logFile: string, pidFile: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
    // spawn reports ENOENT/EACCES as an event; without a listener it would crash the process.
    child.on('error', () => undefined);
    if (child.pid === undefined) throw new Error(`could not start ${bin}`);
    child.unref();
    writeFileSync(pidFile, String(child.pid));
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Signals a process that may exit at any moment; it being gone already is fine. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after graceMs; resolves once the process is gone. */
export async function stopDaemon(pidFile: string, marker: string, graceMs = 15_000): Promise<boolean> {
  const pid = runningPid(pidFile, marker);
  if (pid === undefined) {
    rmSync(pidFile, { force: true });
    return false;
  }
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) {
    signal(pid, 'SIGKILL');
    while (alive(pid)) await sleep(50);
  }
  rmSync(pidFile, { force: true });
  return true;
}
