/**
 * Inter-node 1 Hz streams alice -> bob -> carol: the most concurrent streams the regtest network
 * sustains (every stream makes its payment each second and carol's gateway credits all of it),
 * next to LND's raw keysend rate alice -> carol measured in the same run.
 *
 *   npm run bench:streams-remote [-- --seconds 15 --max 64 --keep]
 *
 * Uses its own network (.regtest-bench, base port 27800) and stops it at the end unless --keep.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getWalletInfo, payViaPaymentDetails } from 'ln-service';
import { pino } from 'pino';
import { DEFAULTS } from '../src/config/load.js';
import { msat } from '../src/domain/msat.js';
import { LndBackend } from '../src/lightning/lnd/lnd-backend.js';
import { openAccounts } from '../src/main.js';
import { OPERATOR_ACCOUNT } from '../src/ledger/system-accounts.js';
import { benchNetwork, runBench } from './support.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    max: { type: 'string', default: '64' },
    concurrency: { type: 'string', default: '8' },
    keep: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const MAX = Number(values.max);
const C = Number(values.concurrency);
const RATE = 2000n; // msat/s: one 2-sat keysend per stream per second

const network = benchNetwork();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const status = await network.up();
  const creds = (name: string) => {
    const n = status.nodes.find((x) => x.name === name)!;
    return { socket: n.grpcSocket, cert: n.tlsCert, macaroon: n.adminMacaroon };
  };
  const aliceLnd = await network.lnd('alice');
  const carolKey = (await getWalletInfo({ lnd: await network.lnd('carol') })).public_key;

  // Raw LND: keysends alice -> carol as fast as C workers go, for SECONDS.
  let raw = 0;
  let rawFailed = 0;
  const rawUntil = Date.now() + SECONDS * 1000;
  const rawStart = Date.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (Date.now() < rawUntil) {
        const preimage = randomBytes(32);
        try {
          await payViaPaymentDetails({
            lnd: aliceLnd,
            destination: carolKey,
            id: createHash('sha256').update(preimage).digest('hex'),
            mtokens: RATE.toString(),
            max_fee_mtokens: '10000',
            messages: [{ type: '5482373484', value: preimage.toString('hex') }],
          });
          raw += 1;
        } catch {
          rawFailed += 1;
        }
      }
    }),
  );
  const rawRate = raw / ((Date.now() - rawStart) / 1000);
  console.error(`raw keysend: ${rawRate.toFixed(1)}/s (${rawFailed} failed)`);

  const [aliceBackend, carolBackend] = await Promise.all([
    LndBackend.connect(creds('alice')),
    LndBackend.connect(creds('carol')),
  ]);
  const log = pino({ level: 'silent' });
  const alice = await openAccounts(
    { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-bench-sa-')) },
    aliceBackend,
    log,
    { payTimeoutMs: 30_000 },
  );
  const carol = await openAccounts(
    { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-bench-sc-')) },
    carolBackend,
    log,
  );
  const a = alice.services;
  const c = carol.services;
  await a.ledger.createAccount({ id: 'payer', kind: 'agent', name: 'payer' }).durable;
  await a.policies.set('payer', { rules: [{ type: 'max_in_flight', max: 10_000 }] });
  await a.ledger.transfer({
    debitAccountId: OPERATOR_ACCOUNT,
    creditAccountId: 'payer',
    amount: msat(10n ** 11n),
    code: 'funding',
  }).durable;
  await c.ledger.createAccount({ id: 'relay', kind: 'device', name: 'relay' }).durable;
  const inbox = await c.receiver!.createInbox('relay', { graceSeconds: 5 });

  let best = 0;
  for (let k = 1; k <= MAX; k *= 2) {
    const ids: string[] = [];
    for (let i = 0; i < k; i++) {
      const s = await a.streams!.create('payer', {
        payee: { nodePubkey: inbox.nodePubkey, recipientId: inbox.recipientId },
        rateMsat: msat(RATE),
        intervalSeconds: 1,
      });
      ids.push(s.id);
    }
    await sleep(SECONDS * 1000);
    const stopped = await Promise.all(ids.map((id) => a.streams!.stop(id)));
    // Let in-flight payments land, then compare what each stream owed, sent and carol credited.
    let settled = false;
    for (let i = 0; i < 60 && !settled; i++) {
      await sleep(1000);
      const checks = await Promise.all(
        ids.map(async (id) => {
          const s = await a.streams!.get(id);
          return (await c.receiver!.getIncoming(id))?.totalMsat === s.paidMsat && s.owedMsat === 0n;
        }),
      );
      settled = checks.every(Boolean);
    }
    const payments = stopped.map((s) => s.payments ?? 0);
    const minPayments = Math.min(...payments);
    const ok =
      settled &&
      stopped.every((s) => (s.payments ?? 0) >= s.activeSeconds - 2 && s.stopReason === 'requested');
    console.error(
      `${String(k).padStart(3)} streams: ${ok ? 'sustained' : 'NOT sustained'} (min payments ${minPayments} in ~${SECONDS} s, all credited: ${settled})`,
    );
    if (!ok) break;
    best = k;
  }
  console.log(`raw keysend alice->carol: ${rawRate.toFixed(1)} payments/s`);
  console.log(`1 Hz inter-node streams sustained: ${best} (= ${best} keysends/s)`);
  console.log(`ratio streams keysends/s / raw keysend rate: ${(best / rawRate).toFixed(2)}`);
  await alice.close();
  await carol.close();
  await aliceBackend.close();
  await carolBackend.close();
}

runBench(main, network, values.keep!);
