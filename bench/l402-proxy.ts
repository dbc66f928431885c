/**
 * Paid requests through the L402 proxy vs the same upstream behind a plain reverse proxy
 * (no payment), in the same run: throughput and p50/p99 latency, load from a separate
 * autocannon process.
 *
 *   npm run bench:proxy [-- --duration 8 --connections 32 --rounds 5]
 *
 * The gateway's modules are the compiled ones from dist/ (the npm script builds them first),
 * as `npm start` runs them; one unrecorded warm-up round of each variant comes first.
 * The paid credential is bought once (challenge + preimage); after that LND is not on the hot
 * path, so the gate runs over the in-memory Lightning stand-in. The ledger is the real LevelDB one:
 * every request is charged (1 msat) and made durable before its response ends.
 */
import { spawn, execFile } from 'node:child_process';
import { createServer, request, Agent } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { pino } from 'pino';
import { FakeLightning } from '../test/support/fake-lightning.js';

/** The compiled modules (what `npm start` runs, built by the npm script), typed by their sources. */
const compiled = <T>(path: string): Promise<T> =>
  import(new URL(`../dist/${path}`, import.meta.url).href) as Promise<T>;
const { DEFAULTS } = await compiled<typeof import('../src/config/load.js')>('config/load.js');
const { openAccounts } = await compiled<typeof import('../src/main.js')>('main.js');
const { L402Authority } = await compiled<typeof import('../src/l402/authority.js')>('l402/authority.js');
const { L402Gate } = await compiled<typeof import('../src/l402/gate.js')>('l402/gate.js');
const { parseProxyConfig } = await compiled<typeof import('../src/proxy/config.js')>('proxy/config.js');
const { createProxy } = await compiled<typeof import('../src/proxy/server.js')>('proxy/server.js');
const { decodeV2 } = await compiled<typeof import('../src/l402/macaroon.js')>('l402/macaroon.js');

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const run = promisify(execFile);

async function upstreamProcess(): Promise<string> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/sample-upstream/main.ts', '0', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => proc.kill());
  return new Promise((resolve) => {
    let out = '';
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
  });
}

/** The baseline: a minimal reverse proxy with the same keep-alive agent and no payment. */
function plainProxy(upstream: URL): Promise<string> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const server = createServer((req, res) => {
    const up = request(
      new URL(req.url ?? '/', upstream),
      { method: req.method, headers: { ...req.headers, host: upstream.host }, agent },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as { port: number }).port}`)),
  );
}

async function load(
  url: string,
  headers: Record<string, string>,
  seconds = Number(values.duration),
): Promise<{ rps: number; p50: number; p99: number; non2xx: number; cpuUs: number }> {
  const args = [
    'node_modules/autocannon/autocannon.js',
    '-j',
    '-c',
    values.connections!,
    '-d',
    String(seconds),
  ];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  // Both proxies live in this process and only one is loaded at a time: its CPU per request.
  const cpu0 = process.cpuUsage();
  const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  const cpu = process.cpuUsage(cpu0);
  const r = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
  };
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    cpuUs: (cpu.user + cpu.system) / r.requests.total,
  };
}

const upstream = await upstreamProcess();
const plain = await plainProxy(new URL(upstream));
const lightning = new FakeLightning();
const config = { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-bench-proxy-')) };
const stack = await openAccounts(config, lightning, pino({ level: 'silent' }));
const { services } = parseProxyConfig({
  services: [
    {
      name: 'models',
      pathPrefix: '/v1/',
      upstream,
      mode: 'paid',
      pricePerRequestMsat: '1',
      creditMsat: '1000000000000',
      lifetimeSeconds: 86_400,
    },
  ],
});
const gate = new L402Gate(new L402Authority(Buffer.alloc(32, 7)), lightning, stack.services.payments);
const proxy = createProxy({ services, gate, ledger: stack.services.ledger, log: pino({ level: 'silent' }) });
const paid = await new Promise<string>((r) =>
  proxy.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(proxy.address() as { port: number }).port}`)),
);

// Buy one credential: the challenge's invoice is paid (its preimage known to the stand-in).
const challenge = await gate.challenge({
  name: 'models',
  creditMsat: services[0]!.credit,
  lifetimeSeconds: 86_400,
});
const hash = decodeV2(Buffer.from(challenge.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
const authorization = `L402 ${challenge.macaroon}:${lightning.invoices.get(hash)!.preimage}`;
const check = await fetch(`${paid}/v1/models`, { headers: { authorization } });
if (check.status !== 200) throw new Error(`paid request failed: ${check.status}`);

// One unrecorded round of each first: both proxies measured warm (JIT, sockets, agent pools).
if (!values.only) {
  await load(`${plain}/v1/models`, {}, 3);
  await load(`${paid}/v1/models`, { authorization }, 3);
}
const rounds = Number(values.rounds);
const results = {
  plain: [] as Awaited<ReturnType<typeof load>>[],
  paid: [] as Awaited<ReturnType<typeof load>>[],
};
for (let i = 0; i < rounds; i++) {
  for (const v of i % 2 === 0 ? (['plain', 'paid'] as const) : (['paid', 'plain'] as const)) {
    if (values.only && values.only !== v) continue;
    const r =
      v === 'plain'
        ? await load(`${plain}/v1/models`, {})
        : await load(`${paid}/v1/models`, { authorization });
    results[v].push(r);
    console.error(
      `round ${i + 1} ${v.padEnd(5)} ${r.rps.toFixed(0)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  cpu ${r.cpuUs.toFixed(1)} µs/req  non-2xx ${r.non2xx}`,
    );
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = (xs: Awaited<ReturnType<typeof load>>[]) => ({
  rps: med(xs.map((x) => x.rps)),
  p50: med(xs.map((x) => x.p50)),
  p99: med(xs.map((x) => x.p99)),
  cpuUsPerRequest: Number(med(xs.map((x) => x.cpuUs)).toFixed(1)),
});
if (values.only) process.exit(0);
const a = summary(results.plain);
const b = summary(results.paid);
// Rounds are paired in time; the machine drifts, so the median of the per-round ratios is shown too.
const pairRatios = results.paid.map((p, i) => p.rps / results.plain[i]!.rps);
const pairP99 = results.paid.map((p, i) => p.p99 - results.plain[i]!.p99);
console.log(
  JSON.stringify({
    connections: Number(values.connections),
    durationSec: Number(values.duration),
    plain: a,
    paid: b,
    throughputRatio: Number((b.rps / a.rps).toFixed(3)),
    p99DeltaMs: b.p99 - a.p99,
    medianRoundRatio: Number(med(pairRatios).toFixed(3)),
    medianRoundP99DeltaMs: med(pairP99),
  }),
);
await stack.close();
process.exit(0);
