/**
 * L402 challenges per second (402 answers, each with a fresh LND invoice and macaroon) vs raw
 * invoice creation with ln-service on the same node, in the same run, rounds alternated.
 *
 *   npm run bench:challenges [-- --count 300 --concurrency 8 --rounds 3 --challenge-limit 1000000]
 *
 * One client asks for every challenge, so the proxy's per-address challenge limiter (20 a second
 * by default) is set to --challenge-limit a second through the services file's
 * `challengeRateLimit`: what is measured is the challenge path, not the limiter.
 *
 * Uses its own regtest network (.regtest-bench, base port 27800; see bench/support.ts) and stops it at the end.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createInvoice } from 'ln-service';
import { pino } from 'pino';
import { DEFAULTS } from '../src/config/load.js';
import { LndBackend } from '../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startL402Proxy } from '../src/main.js';
import { sampleProxyConfig } from '../src/proxy/config.js';
import { startSampleUpstream } from '../src/sample-upstream/server.js';
import { benchNetwork } from './support.js';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    'challenge-limit': { type: 'string', default: '1000000' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.count);
const C = Number(values.concurrency);
const LIMIT = Number(values['challenge-limit']);

const network = benchNetwork();

async function pool(job: () => Promise<void>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next++ < N) await job();
    }),
  );
  return N / (Number(process.hrtime.bigint() - start) / 1e9);
}

try {
  const status = await network.up();
  const a = status.nodes.find((n) => n.name === 'alice')!;
  const backend = await LndBackend.connect({
    socket: a.grpcSocket,
    cert: a.tlsCert,
    macaroon: a.adminMacaroon,
  });
  const lnd = await network.lnd('alice');
  const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-bench-ch-'));
  const sample = await startSampleUpstream({ port: 0, host: '127.0.0.1' });
  const configFile = join(dataDir, 'services.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      ...(sampleProxyConfig(sample.url) as object),
      challengeRateLimit: { requests: LIMIT, perSeconds: 1 },
    }),
  );
  const config = {
    ...DEFAULTS,
    dataDir,
    proxy: { enabled: true, host: '127.0.0.1', port: 0, samplePort: 0, configFile },
  };
  const stack = await openAccounts(config, backend, pino({ level: 'silent' }));
  const proxy = await startL402Proxy(config, stack.services, backend, pino({ level: 'silent' }));
  const body = JSON.stringify({
    model: 'sample-small',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 1,
  });
  const results = { challenge: [] as number[], invoice: [] as number[] };
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const v of r % 2 === 0 ? (['invoice', 'challenge'] as const) : (['challenge', 'invoice'] as const)) {
      const rate =
        v === 'invoice'
          ? await pool(
              async () => void (await createInvoice({ lnd, mtokens: '1000000', description: 'raw' })),
            )
          : await pool(async () => {
              const res = await fetch(`${proxy.url}/v1/chat/completions`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body,
              });
              if (res.status !== 402 || !res.headers.get('www-authenticate'))
                throw new Error(`expected a challenge, got ${res.status}`);
              await res.arrayBuffer();
            });
      results[v].push(rate);
      console.error(`round ${r + 1} ${v.padEnd(9)} ${rate.toFixed(1)}/s`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const c = med(results.challenge);
  const i = med(results.invoice);
  console.log(
    JSON.stringify({
      count: N,
      concurrency: C,
      challengeLimitPerSec: LIMIT,
      challengesPerSec: Number(c.toFixed(1)),
      rawInvoicesPerSec: Number(i.toFixed(1)),
      ratio: Number((c / i).toFixed(3)),
    }),
  );
  await proxy.close();
  sample.server.closeAllConnections();
  await new Promise((r) => sample.server.close(r));
  await stack.close();
  await backend.close();
} finally {
  if (!values.keep) await network.down();
}
process.exit(0);
