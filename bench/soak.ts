/**
 * Soak: does the gateway's memory and start-up stay bounded by what is live, not by history?
 * (issue #12). In one run, on one data dir, against the bench regtest network's LND (alice):
 *   1. the real gateway (`node dist/cli/index.js start`, what `npm start` runs) starts on an empty
 *      store: start-up time (spawn → the CLI's "listening on" line, printed once the HTTP API, the
 *      L402 proxy and the MQTT broker listen) and RSS after two full GCs; then it stops;
 *   2. with the gateway stopped, the store is filled through the gateway's own modules
 *      (bench/soak-populate.ts): at scale 1, 10M internal transfers over 100k agents, 1M L402
 *      credentials bought and used, 1M final payments, 1M settled invoices, 1M unpaid challenges;
 *   3. the gateway starts again on the full store: the same two figures, and full/empty ratios.
 *
 *   npm run bench:soak [-- --scale 0.01 --keep --keep-data --settle 3]
 *   npm run bench:soak -- --reuse <data dir kept by --keep-data>   (full store re-measured, no populate)
 *
 * RSS after GC: the gateway runs with `--expose-gc --import bench/soak-probe.mjs`; on SIGUSR2 the
 * probe runs gc() twice and writes process.memoryUsage() to a file read here (nothing in src/).
 * Goals: full/empty RSS ≤ 1.2 and full start-up ≤ 5 s.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { NodeStatus } from '../src/regtest/network.js';
import { countsFor, populate } from './soak-populate.js';
import { benchNetwork, runBench } from './support.js';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: '1' },
    /** Seconds between "ready" and the GC + memory probe (background work at start settles). */
    settle: { type: 'string', default: '3' },
    /** Longest wait for a start (a full store on the code before issue #12 takes minutes). */
    'start-timeout': { type: 'string', default: '3600' },
    keep: { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    /** A data dir a previous run populated (kept with --keep-data): measure it again, no populate. */
    reuse: { type: 'string' },
  },
});
const SCALE = Number(values.scale);
if (!(SCALE > 0)) throw new Error(`--scale must be a positive number, not ${values.scale}`);
const RSS_GOAL = 1.2;
const START_GOAL_S = 5;
const root = fileURLToPath(new URL('..', import.meta.url));
const probe = pathToFileURL(join(root, 'bench', 'soak-probe.mjs')).href;
const network = benchNetwork();
const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-soak-'));
/** The full store: this run's `dataDir` once populated, or the one given by --reuse. */
const fullDir = values.reuse ?? dataDir;
const live = new Set<ReturnType<typeof spawn>>();

interface Measure {
  startSeconds: number;
  rssMb: number;
  heapUsedMb: number;
  /** The resident set's anonymous part (heap, native allocations) and file-backed part (mmap). */
  rssAnonMb: number;
  rssFileMb: number;
  /** The machine's 1-minute load average when the start began (other processes slow a start down). */
  loadAvg: number;
}

const mb = (n: number): number => Number((n / 1024 / 1024).toFixed(1));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts the gateway on `dataDir`, times it to ready, probes its memory after GC, stops it. */
async function measure(node: NodeStatus, label: string, dir: string): Promise<Measure> {
  const probeFile = join(dataDir, `probe-${label}.json`);
  const loadAvg = Number(loadavg()[0]!.toFixed(2));
  const t0 = process.hrtime.bigint();
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      probe,
      'dist/cli/index.js',
      'start',
      '--port',
      '0',
      '--data-dir',
      dir,
      '--lnd-socket',
      node.grpcSocket,
      '--lnd-cert',
      node.tlsCert,
      '--lnd-macaroon',
      node.adminMacaroon,
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        COULOMB_OPERATOR_KEY: randomBytes(24).toString('hex'),
        COULOMB_LOG_LEVEL: 'warn',
        COULOMB_PROXY_PORT: '0',
        COULOMB_MQTT_PORT: '0',
        COULOMB_SAMPLE_UPSTREAM_PORT: '0',
        COULOMB_SOAK_PROBE_FILE: probeFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  live.add(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the gateway did not start within ${values['start-timeout']} s:\n${err}`)),
      Number(values['start-timeout']) * 1000,
    );
    child.stdout.on('data', (c: Buffer) => {
      out = (out + c.toString()).slice(-20_000);
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${code}) during start:\n${out}\n${err}`));
    });
  });
  const startSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // Ready means serving: its health answers (after the clock stopped, so not counted).
  const health = await fetch(`${url}/health`);
  if (health.status !== 200) throw new Error(`the gateway's /health answered ${health.status}`);
  await sleep(Number(values.settle) * 1000);
  child.kill('SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (!existsSync(probeFile)) {
    if (Date.now() > deadline) throw new Error('the memory probe did not answer');
    await sleep(50);
  }
  const mem = JSON.parse(readFileSync(probeFile, 'utf8')) as NodeJS.MemoryUsage & {
    rssAnon: number;
    rssFile: number;
  };
  child.kill('SIGTERM');
  const code = await Promise.race([exited, sleep(30_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') child.kill('SIGKILL');
  live.delete(child);
  if (err.trim())
    console.error(`[gateway ${label}] stderr (last lines):\n${err.trim().split('\n').slice(-5).join('\n')}`);
  return {
    startSeconds: Number(startSeconds.toFixed(2)),
    rssMb: mb(mem.rss),
    heapUsedMb: mb(mem.heapUsed),
    rssAnonMb: mb(mem.rssAnon),
    rssFileMb: mb(mem.rssFile),
    loadAvg,
  };
}

async function main(): Promise<void> {
  const status = await network.up();
  const alice = status.nodes.find((n) => n.name === 'alice')!;
  const counts = countsFor(SCALE);
  console.error(`soak at scale ${SCALE}: ${JSON.stringify(counts)}; data dir ${dataDir}`);

  const empty = await measure(alice, 'empty', dataDir);
  console.error(
    `empty store: start ${empty.startSeconds} s, RSS after GC ${empty.rssMb} MB (anonymous ${empty.rssAnonMb}, file-backed ${empty.rssFileMb}; load ${empty.loadAvg})`,
  );

  const t0 = process.hrtime.bigint();
  const phases = values.reuse
    ? []
    : await populate(dataDir, counts, (t) =>
        console.error(`  populate ${t.phase}: ${t.count} in ${t.seconds} s (${t.perSec}/s)`),
      );
  const populateSeconds = Number((Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1));
  console.error(values.reuse ? `reusing the store in ${fullDir}` : `populated in ${populateSeconds} s`);

  const full = await measure(alice, 'full', fullDir);
  console.error(
    `full store:  start ${full.startSeconds} s, RSS after GC ${full.rssMb} MB (anonymous ${full.rssAnonMb}, file-backed ${full.rssFileMb}; load ${full.loadAvg})`,
  );

  const rssRatio = Number((full.rssMb / empty.rssMb).toFixed(2));
  const startRatio = Number((full.startSeconds / empty.startSeconds).toFixed(2));
  const rssPass = rssRatio <= RSS_GOAL;
  const startPass = full.startSeconds <= START_GOAL_S;
  console.error(
    `full/empty RSS ${rssRatio} (goal ≤ ${RSS_GOAL}: ${rssPass ? 'PASS' : 'FAIL'}); ` +
      `start-up ${full.startSeconds} s (goal ≤ ${START_GOAL_S} s: ${startPass ? 'PASS' : 'FAIL'}), ` +
      `full/empty ${startRatio}`,
  );
  console.log(
    JSON.stringify({
      scale: SCALE,
      counts,
      populateSeconds,
      phases,
      empty,
      full,
      rssRatio,
      startRatio,
      goals: { rssRatio: RSS_GOAL, startSeconds: START_GOAL_S },
      pass: { rss: rssPass, start: startPass },
    }),
  );
}

runBench(main, network, values.keep!, () => {
  for (const child of live) child.kill('SIGKILL');
  if (!values['keep-data']) rmSync(dataDir, { recursive: true, force: true });
});
