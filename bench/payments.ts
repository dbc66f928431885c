/**
 * Payments per second alice -> bob on one regtest channel: through Coulomb's LND adapter vs
 * ln-service called directly, in the same run, rounds interleaved so drift hits both alike.
 *
 *   npm run bench:payments [-- --payments 200 --concurrency 4 --rounds 3]
 *
 * Uses its own network (.regtest-bench, base port 27800) and stops it at the end.
 */
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoice, payViaPaymentRequest } from 'ln-service';
import { pino } from 'pino';
import { DEFAULTS } from '../src/config/load.js';
import { openAccounts } from '../src/main.js';
import { OPERATOR_ACCOUNT } from '../src/ledger/system-accounts.js';
import { tierPolicy } from '../src/policy/tiers.js';
import { msat } from '../src/domain/msat.js';
import { LndBackend } from '../src/lightning/lnd/lnd-backend.js';
import { benchNetwork, runBench } from './support.js';

const { values } = parseArgs({
  options: {
    payments: { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const N = Number(values.payments);
const C = Number(values.concurrency);
const ROUNDS = Number(values.rounds);

const network = benchNetwork();

async function runPool(jobs: (() => Promise<void>)[], concurrency: number): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        await job();
      }
    }),
  );
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function main(): Promise<void> {
  const status = await network.up();
  const alice = status.nodes.find((n) => n.name === 'alice')!;
  const bobLnd = await network.lnd('bob');
  const aliceLnd = await network.lnd('alice');
  const adapter = await LndBackend.connect({
    socket: alice.grpcSocket,
    cert: alice.tlsCert,
    macaroon: alice.adminMacaroon,
  });

  const invoices = async (): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < N; i++)
      out.push((await createInvoice({ lnd: bobLnd, mtokens: '1000', description: `bench ${i}` })).request);
    return out;
  };

  const gateway = await openAccounts(
    { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-bench-gw-')) },
    adapter,
    pino({ level: 'silent' }),
  );
  const g = gateway.services;
  await g.ledger.createAccount({ id: 'bench', kind: 'agent', name: 'bench' }).durable;
  await g.policies.set('bench', tierPolicy('L3'));
  await g.ledger.transfer({
    debitAccountId: OPERATOR_ACCOUNT,
    creditAccountId: 'bench',
    amount: msat(10n ** 12n),
    code: 'funding',
  }).durable;

  const variants = ['direct', 'adapter', 'gateway'] as const;
  const results = { adapter: [] as number[], direct: [] as number[], gateway: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = [...variants.slice(round % 3), ...variants.slice(0, round % 3)];
    for (const variant of order) {
      const requests = await invoices();
      const jobs = requests.map((request) =>
        variant === 'adapter'
          ? async () => {
              const r = await adapter.payInvoice({ request, maxFeeMsat: msat(10_000), timeoutMs: 120_000 });
              if (r.status !== 'succeeded') throw new Error(`adapter payment ${r.status}`);
            }
          : async () => {
              await payViaPaymentRequest({ lnd: aliceLnd, request, max_fee_mtokens: '10000' });
            },
      );
      const seconds = await runPool(jobs, C);
      const pps = N / seconds;
      results[variant].push(pps);
      console.error(`round ${round + 1} ${variant.padEnd(7)} ${pps.toFixed(1)} payments/s`);
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const a = median(results.adapter);
  const d = median(results.direct);
  const gw = median(results.gateway);
  console.log(
    JSON.stringify({
      payments: N,
      concurrency: C,
      rounds: ROUNDS,
      adapterPaymentsPerSec: Number(a.toFixed(1)),
      directPaymentsPerSec: Number(d.toFixed(1)),
      ratio: Number((a / d).toFixed(3)),
      gatewayPaymentsPerSec: Number(gw.toFixed(1)),
      gatewayRatio: Number((gw / d).toFixed(3)),
    }),
  );
  await gateway.close();
  await adapter.close();
}

runBench(main, network, values.keep!);
