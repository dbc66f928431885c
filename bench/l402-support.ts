/**
 * What the L402 proxy benchmarks share (bench/l402-proxy.ts, bench/l402-instances.ts): child
 * processes started and stopped, CPU time from /proc, load rounds from a separate autocannon
 * process (bench/l402-load.mjs), a credential bought with bob's LND, the services file, the
 * sample upstream and the plain proxy (the baseline).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pay } from 'ln-service';
import type { RegtestNetwork } from '../src/regtest/network.js';

export const run = promisify(execFile);
export const root = fileURLToPath(new URL('..', import.meta.url));
const TICK_US = 1e6 / Number((await run('getconf', ['CLK_TCK'])).stdout.trim() || '100');

export const load1 = (): number => Number(loadavg()[0]!.toFixed(2));
export const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const round1 = (n: number): number => Number(n.toFixed(1));
/** Each round runs every variant once, in an order rotated by round (drift spreads evenly). */
export const rotated = <T>(xs: T[], round: number): T[] => xs.map((_, i) => xs[(i + round) % xs.length]!);

/** Fields of /proc/<pid>/stat after the command name (field 3 is index 0). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** A process's CPU time so far (user + system, all its threads, µs), from /proc. */
export function cpuUs(pid: number): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

/**
 * The CPU time (µs) of a server and all its children (PostgreSQL's postmaster and its backends
 * and workers): each living child's own, the server's, and what its exited children used.
 */
export function treeCpuUs(pid: number): number {
  const f = statFields(pid);
  let total = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * TICK_US;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const c = statFields(Number(entry));
      if (Number(c[1]) === pid) total += (Number(c[11]) + Number(c[12])) * TICK_US;
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Child processes of a benchmark: started, stopped, and all killed whatever happens. */
export class Processes {
  readonly live = new Set<ChildProcess>();
  private readonly stopping = new Set<ChildProcess>();

  /** Spawns a node process and waits for the first URL matching `pattern` on its stdout. */
  start(
    args: string[],
    pattern: RegExp,
    env: NodeJS.ProcessEnv = {},
    /** Where to write all its output too (kept after the benchmark). */
    logFile?: string,
  ): Promise<{ child: ChildProcess; url: string }> {
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.live.add(child);
    if (logFile) {
      const log = createWriteStream(logFile, { flags: 'a' });
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
    }
    let out = '';
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-10_000)));
    return new Promise((resolve, reject) => {
      child.stdout!.on('data', (c: Buffer) => {
        out = (out + c.toString()).slice(-10_000);
        const m = pattern.exec(out);
        if (m) resolve({ child, url: m[1]! });
      });
      child.once('exit', (code, signal) => {
        const wasLive = this.live.delete(child);
        const what = `${args.join(' ')} exited (${code ?? signal}):\n${out}\n${err}`;
        // After it started: said at once (a benchmark then fails on its missing process).
        if (wasLive && !this.stopping.has(child)) console.error(`[bench] ${what}`);
        reject(new Error(what));
      });
    });
  }

  async stop(child: ChildProcess): Promise<void> {
    this.stopping.add(child);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    }
    this.live.delete(child);
  }

  /** Kills what is still running (a benchmark's cleanup, also after a failure). */
  killAll(): void {
    for (const child of this.live) {
      this.stopping.add(child);
      child.kill('SIGKILL');
    }
  }
}

/** The sample OpenAI-compatible upstream (no delay) and the plain node:http proxy to it. */
export async function upstreamAndPlain(
  procs: Processes,
  /** Node options of the plain proxy (`--cpu-prof …`: profiled like the gateways). */
  plainNodeArgs: string[] = [],
): Promise<{
  upstream: { child: ChildProcess; url: string };
  plain: { child: ChildProcess; url: string };
}> {
  const upstream = await procs.start(['dist/sample-upstream/main.js', '0', '0'], /listening on (\S+)/);
  const plain = await procs.start(
    [...plainNodeArgs, 'bench/plain-proxy.mjs', upstream.url],
    /listening on (\S+)/,
  );
  return { upstream, plain };
}

/** A services file; the per-address challenge limiter lifted (one client asks for them all). */
export function writeServices(file: string, services: Record<string, unknown>[]): void {
  writeFileSync(
    file,
    JSON.stringify({ services, challengeRateLimit: { requests: 1_000_000, perSeconds: 1 } }),
  );
}

/** The fixed-price service of the proxy benchmarks: 1 msat a request under `pathPrefix`. */
export function fixedPriceService(upstream: string, pathPrefix = '/v1/'): Record<string, unknown> {
  return {
    name: 'models',
    pathPrefix,
    upstream,
    mode: 'paid',
    pricePerRequestMsat: '1',
    creditMsat: '100000000',
    lifetimeSeconds: 86_400,
  };
}

export interface LoadTarget {
  urls: string[];
  method?: 'GET' | 'POST';
  body?: string;
  contentType?: string;
  /** Connection i cycles through perConnection[i % length] (authorization values). */
  perConnection?: string[][];
}

export interface Round {
  /** Responses a second (autocannon's average of its per-second samples). */
  rps: number;
  /** 2xx responses a second over the round. */
  okRps: number;
  total: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU µs a request of each group of processes measured (e.g. gateways, database). */
  cpu: Record<string, number>;
  load: number;
}

/**
 * One load round from a separate autocannon process: requests/s and latency, and the CPU time a
 * request of each named group of processes (`cpuOf`: name to a function reading µs so far); the
 * load generator's own is `load generator`.
 */
export async function loadRound(
  target: LoadTarget,
  cpuOf: Record<string, () => number>,
  o: { connections: number; seconds: number; rate?: number },
): Promise<Round> {
  const spec = { ...target, connections: o.connections, duration: o.seconds, rate: o.rate };
  const load = load1();
  const before = Object.fromEntries(Object.entries(cpuOf).map(([k, f]) => [k, f()]));
  const { stdout } = await run(process.execPath, ['bench/l402-load.mjs', JSON.stringify(spec)], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const after = Object.fromEntries(Object.entries(cpuOf).map(([k, f]) => [k, f()]));
  const r = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
    duration: number;
    '2xx': number;
    cpuUs: number;
  };
  const total = Math.max(1, r.requests.total);
  const cpu: Record<string, number> = {};
  for (const k of Object.keys(cpuOf)) cpu[k] = (after[k]! - before[k]!) / total;
  cpu['load generator'] = r.cpuUs / total;
  return {
    rps: r.requests.average,
    okRps: r['2xx'] / r.duration,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    cpu,
    load,
  };
}

/**
 * Buys a credential from a gateway: a 402 for `path`, bob pays its invoice, the preimage
 * completes it (checked with one paid request).
 */
export async function buyCredential(
  url: string,
  bob: Awaited<ReturnType<RegtestNetwork['lnd']>>,
  path = '/v1/models',
  init: RequestInit = {},
): Promise<string> {
  const challenge = await fetch(`${url}${path}`, init);
  const header = challenge.headers.get('www-authenticate') ?? '';
  const mac = /macaroon="([^"]+)"/.exec(header)?.[1];
  const invoice = /invoice="([^"]+)"/.exec(header)?.[1];
  if (challenge.status !== 402 || !mac || !invoice)
    throw new Error(`no challenge: ${challenge.status} ${header}`);
  const paid = await pay({ lnd: bob, request: invoice });
  const authorization = `L402 ${mac}:${paid.secret}`;
  await checkPaid(url, authorization, path, init);
  return authorization;
}

/** One paid request with a credential; throws unless it is answered 200. */
export async function checkPaid(
  url: string,
  authorization: string,
  path = '/v1/models',
  init: RequestInit = {},
): Promise<void> {
  const check = await fetch(`${url}${path}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string> | undefined), authorization },
  });
  if (check.status !== 200) throw new Error(`paid request failed: ${check.status} ${await check.text()}`);
  await check.arrayBuffer();
}
