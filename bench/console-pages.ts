/**
 * Console pages on a big store (issue #14's acceptance): with 100,000 accounts and 1,000,000
 * history rows, does each console page answer in ≤ 300 ms? In one run, on one data dir, against
 * the bench regtest network's LND (alice):
 *   1. the real gateway (`node dist/cli/index.js start`) starts on an empty store; each page's
 *      load calls are timed (the baseline), with `GET /health`; then it stops;
 *   2. with the gateway stopped, the store is filled through the gateway's own modules (as
 *      bench/soak-populate.ts does): agent accounts created, given the L3 policy and funded by the
 *      operator, then internal transfers between them (each a journal row on both sides), with
 *      one account, the first, on one side of every tenth (its history is deep), internal
 *      payments (an agent pays another's invoice: the operator's payments list), and a few
 *      frozen accounts;
 *   3. the gateway starts again on the full store and the same calls are timed.
 *
 *   npm run bench:console [-- --accounts 100000 --history 1000000 --payments 10000 --runs 30 --keep --keep-data]
 *   npm run bench:console -- --reuse <data dir kept by --keep-data>   (no populate)
 *
 * A page's time is what its load costs: the API calls the console page makes when it opens
 * (`PAGES` below, in the page's order: calls it makes at once go together), measured by this
 * client over loopback with the session cookie a console login gets, from the first request
 * sent to the last response body read. That is server time plus loopback, an upper bound of
 * the server time. Per page: the median and the 95th percentile of `--runs` loads after two
 * warm-up loads; ratios against the same page on the empty store and against `GET /health` on the
 * full store. Goal: median ≤ 300 ms on the full store.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULTS } from '../src/config/load.js';
import { msat } from '../src/domain/msat.js';
import { openAccounts } from '../src/main.js';
import { tierPolicy } from '../src/policy/tiers.js';
import type { NodeStatus } from '../src/regtest/network.js';
import { SoakLightning } from './soak-lightning.js';
import { benchNetwork, runBench } from './support.js';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '100000' },
    /** Journal rows in all (two per transfer: the fundings, then internal transfers). */
    history: { type: 'string', default: '1000000' },
    /** Internal payments (agent pays agent's invoice) for the operator's payments list. */
    payments: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '30' },
    keep: { type: 'boolean', default: false },
    'keep-data': { type: 'boolean', default: false },
    reuse: { type: 'string' },
  },
});
const ACCOUNTS = Number(values.accounts);
const HISTORY = Number(values.history);
const RUNS = Number(values.runs);
const PAYMENTS = Number(values.payments);
if (!(ACCOUNTS >= 10 && HISTORY >= 2 * ACCOUNTS && RUNS >= 1))
  throw new Error('--accounts ≥ 10, --history ≥ 2 × accounts and --runs ≥ 1');
const GOAL_MS = 300;
const root = fileURLToPath(new URL('..', import.meta.url));
const network = benchNetwork();
const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-console-'));
const fullDir = values.reuse ?? dataDir;
const live = new Set<ReturnType<typeof spawn>>();
const operatorKey = randomBytes(24).toString('hex');

/** The agent ids: zero-padded, so that they sort as numbered and an id prefix means something. */
const agentId = (i: number): string => `console-agent-${String(i).padStart(6, '0')}`;
/** The account whose page is measured: on one side of every tenth transfer, so its history is deep. */
const HEAVY = agentId(0);

/**
 * What each console page asks for when it opens (console/app.tsx): the steps in order, the calls
 * of a step at once. `{id}` is the measured account.
 */
const PAGES: Record<string, string[][]> = {
  overview: [
    ['/v1/node', '/v1/node/balances', '/v1/alerts', '/v1/accounts?frozen=true&limit=20'],
    ['/v1/liabilities'],
    ['/health'],
  ],
  accounts: [['/v1/accounts?limit=50']],
  // A search from the middle of the 100,000 names and ids: an index range, never a scan.
  'search by name': [['/v1/accounts?limit=50&by=name&prefix=CONSOLE-AGENT-050']],
  'search by id': [['/v1/accounts?limit=50&by=id&prefix=console-agent-0999']],
  account: [
    [
      '/v1/accounts/{id}',
      '/v1/accounts/{id}/history?limit=50',
      '/v1/accounts/{id}/policy',
      '/v1/accounts/{id}/keys',
      '/v1/accounts/{id}/payments?limit=20',
    ],
  ],
  approvals: [['/v1/approvals?limit=50&state=pending']],
  payments: [['/v1/payments?limit=50']],
  escrows: [['/v1/escrows?limit=50']],
  devices: [['/v1/devices?limit=50']],
  services: [
    ['/v1/proxy/services', '/v1/l402/credentials?limit=50'],
    ['/v1/proxy/services/sample-llm/stats?period=hour'],
  ],
};

const WAVE = 10_000;

/** Fills `dir` (the gateway stopped) through the gateway's own modules. */
async function populate(dir: string): Promise<void> {
  const fake = new SoakLightning();
  const stack = await openAccounts({ ...DEFAULTS, dataDir: dir }, fake, pino({ level: 'silent' }));
  const { ledger, payments, policies } = stack.services;
  const ids = Array.from({ length: ACCOUNTS }, (_, i) => agentId(i));
  const t0 = Date.now();
  const step = (what: string): void => console.error(`  populate: ${what} (${(Date.now() - t0) / 1000} s)`);
  try {
    for (let start = 0; start < ACCOUNTS; start += WAVE) {
      const wave = ids.slice(start, start + WAVE);
      await ledger.ensure({ accounts: wave });
      for (const id of wave) ledger.createAccount({ id, kind: 'agent', name: id });
      await ledger.flush();
      await Promise.all(
        wave.map(async (id) => {
          await policies.set(id, tierPolicy('L3'));
          await payments.fund(id, msat(10n ** 12n));
        }),
      );
    }
    step(`${ACCOUNTS} accounts created, given a policy and funded`);
    const transfers = Math.floor((HISTORY - 2 * ACCOUNTS) / 2);
    const pair = (i: number): [string, string] => {
      const from = i % 10 === 0 ? HEAVY : ids[i % ACCOUNTS]!;
      const to = ids[(i * 7 + 1) % ACCOUNTS]!;
      return [from, to === from ? ids[(i + 1) % ACCOUNTS]! : to];
    };
    for (let done = 0; done < transfers; done += WAVE) {
      const end = Math.min(transfers, done + WAVE);
      const accounts = new Set<string>();
      for (let i = done; i < end; i++) for (const id of pair(i)) accounts.add(id);
      await ledger.ensure({ accounts: [...accounts] });
      const wave: Promise<void>[] = [];
      for (let i = done; i < end; i++) {
        const [from, to] = pair(i);
        wave.push(
          ledger.transfer({ debitAccountId: from, creditAccountId: to, amount: msat(1000), code: 'transfer' })
            .durable,
        );
      }
      await Promise.all(wave);
    }
    step(`${transfers} internal transfers`);
    for (let done = 0; done < PAYMENTS; done += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, PAYMENTS - done) }, async (_, k) => {
          const i = done + k;
          const inv = await payments.createInvoice(ids[(i + 1) % ACCOUNTS]!, { amountMsat: msat(2000) });
          const p = await payments.pay(ids[i % ACCOUNTS]!, { request: inv.request });
          if (p.status !== 'succeeded') throw new Error(`internal payment ${p.status}`);
        }),
      );
    step(`${PAYMENTS} internal payments`);
    const frozen = Array.from({ length: 20 }, (_, i) => agentId((i + 1) * Math.floor(ACCOUNTS / 21)));
    await ledger.ensure({ accounts: frozen });
    for (const id of frozen) await ledger.setFrozen(id, true, 'bench: frozen').durable;
    await ledger.flush();
  } finally {
    await stack.close();
  }
}

/** Starts the gateway on `dir`; resolves with its URL once it listens. */
async function start(node: NodeStatus, dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
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
        COULOMB_OPERATOR_KEY: operatorKey,
        COULOMB_LOG_LEVEL: 'warn',
        COULOMB_PROXY_PORT: '0',
        COULOMB_MQTT_PORT: '0',
        COULOMB_SAMPLE_UPSTREAM_PORT: '0',
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
    child.stdout.on('data', (c: Buffer) => {
      out = (out + c.toString()).slice(-20_000);
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then((code) =>
      reject(new Error(`the gateway exited (${code}) during start:\n${out}\n${err}`)),
    );
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
      if (code === 'timeout') child.kill('SIGKILL');
      live.delete(child);
    },
  };
}

/** Logs in as the console does; returns the session cookie. */
async function login(url: string): Promise<string> {
  const res = await fetch(`${url}/console/api/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: url },
    body: JSON.stringify({ key: operatorKey }),
  });
  const cookie = res.headers.get('set-cookie');
  if (res.status !== 200 || !cookie) throw new Error(`console login answered ${res.status}`);
  return cookie.split(';')[0]!;
}

interface Timing {
  medianMs: number;
  p95Ms: number;
}

/** Times `runs` loads of `steps` (after two warm-ups); every call must answer 200. */
async function time(url: string, cookie: string, steps: string[][]): Promise<Timing> {
  const call = async (path: string): Promise<void> => {
    const res = await fetch(url + path.replaceAll('{id}', encodeURIComponent(HEAVY)), {
      headers: { cookie },
    });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
  };
  const samples: number[] = [];
  for (let run = -2; run < RUNS; run++) {
    const t0 = process.hrtime.bigint();
    for (const step of steps) await Promise.all(step.map(call));
    if (run >= 0) samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): number =>
    Number(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!.toFixed(1));
  return { medianMs: at(0.5), p95Ms: at(0.95) };
}

/** Every page's timing (and /health's) on a started gateway. */
async function measure(node: NodeStatus, dir: string, label: string): Promise<Record<string, Timing>> {
  const gw = await start(node, dir);
  try {
    const cookie = await login(gw.url);
    const load = Number(loadavg()[0]!.toFixed(2));
    const result: Record<string, Timing> = { health: await time(gw.url, cookie, [['/health']]) };
    for (const [page, steps] of Object.entries(PAGES)) result[page] = await time(gw.url, cookie, steps);
    console.error(`${label} store measured (load average ${load} → ${loadavg()[0]!.toFixed(2)})`);
    return result;
  } finally {
    await gw.stop();
  }
}

async function main(): Promise<void> {
  const status = await network.up();
  const alice = status.nodes.find((n) => n.name === 'alice')!;
  console.error(`console pages: ${ACCOUNTS} accounts, ${HISTORY} history rows; data dir ${fullDir}`);
  const emptyDir = mkdtempSync(join(tmpdir(), 'coulomb-console-empty-'));
  let empty: Record<string, Timing>;
  try {
    // The empty store's account page is the heavy account with no history.
    await populateEmpty(emptyDir);
    empty = await measure(alice, emptyDir, 'empty');
  } finally {
    rmSync(emptyDir, { recursive: true, force: true });
  }
  if (!values.reuse) {
    const t0 = Date.now();
    await populate(dataDir);
    console.error(`populated in ${(Date.now() - t0) / 1000} s`);
  }
  const full = await measure(alice, fullDir, 'full');
  const load = Number(loadavg()[0]!.toFixed(2));
  const rows = Object.keys(PAGES).map((page) => {
    const f = full[page]!;
    const e = empty[page]!;
    return {
      page,
      medianMs: f.medianMs,
      p95Ms: f.p95Ms,
      emptyMedianMs: e.medianMs,
      vsEmpty: Number((f.medianMs / e.medianMs).toFixed(2)),
      vsHealth: Number((f.medianMs / full['health']!.medianMs).toFixed(1)),
      pass: f.medianMs <= GOAL_MS,
    };
  });
  for (const r of rows)
    console.error(
      `${r.page.padEnd(14)} median ${r.medianMs} ms, p95 ${r.p95Ms} ms; empty store ${r.emptyMedianMs} ms ` +
        `(×${r.vsEmpty}); ×${r.vsHealth} GET /health — goal ≤ ${GOAL_MS} ms: ${r.pass ? 'PASS' : 'FAIL'}`,
    );
  console.error(
    `GET /health median ${full['health']!.medianMs} ms (full), ${empty['health']!.medianMs} ms (empty)`,
  );
  console.log(
    JSON.stringify({
      accounts: ACCOUNTS,
      history: HISTORY,
      runs: RUNS,
      loadAvg: load,
      health: full['health'],
      pages: rows,
    }),
  );
}

/** The empty store: only the measured account (so its pages answer 200), no history. */
async function populateEmpty(dir: string): Promise<void> {
  const stack = await openAccounts(
    { ...DEFAULTS, dataDir: dir },
    new SoakLightning(),
    pino({ level: 'silent' }),
  );
  try {
    await stack.services.ledger.createAccount({ id: HEAVY, kind: 'agent', name: HEAVY }).durable;
  } finally {
    await stack.close();
  }
}

runBench(main, network, values.keep!, () => {
  for (const child of live) child.kill('SIGKILL');
  if (!values['keep-data'] && !values.reuse) rmSync(dataDir, { recursive: true, force: true });
});
