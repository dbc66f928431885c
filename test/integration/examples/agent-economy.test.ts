import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent } from '../../../examples/agent-economy.js';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startL402Proxy, type ProxyHandle } from '../../../src/main.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { startUpstreamProcess } from '../../support/openai-upstream.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';

let alice: LndBackend;
let upstream: Awaited<ReturnType<typeof startUpstreamProcess>>;
let stack: { services: AccountServices; close(): Promise<void> };
let s: AccountServices;
let proxy: ProxyHandle;
let api: CoulombApp;
let apiUrl: string;

beforeAll(async () => {
  alice = await backendFor('alice');
  upstream = await startUpstreamProcess(1);
  const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-agent-economy-'));
  const file = join(dataDir, 'proxy.json');
  writeFileSync(
    file,
    JSON.stringify({
      services: [
        {
          name: 'llm',
          pathPrefix: '/v1/',
          upstream: upstream.url,
          mode: 'paid',
          models: {
            'sample-large': { inputPerTokenMsat: '2', outputPerTokenMsat: '100' },
            'sample-small': { inputPerTokenMsat: '1', outputPerTokenMsat: '20' },
          },
          creditMsat: '100000',
          lifetimeSeconds: 3600,
          // The agent's upgrade happens here: below 500,000 msat its requests for the strong
          // model are served by the small one.
          routing: {
            tiers: [
              { name: 'strong', minBalanceMsat: '500000' },
              { name: 'cheap', minBalanceMsat: '1000', models: { 'sample-large': 'sample-small' } },
            ],
          },
        },
      ],
    }),
  );
  const config = {
    ...DEFAULTS,
    dataDir,
    proxy: { enabled: true, host: '127.0.0.1', port: 0, samplePort: 0, configFile: file },
  };
  stack = await openAccounts(config, alice, pino({ level: 'silent' }));
  s = stack.services;
  proxy = await startL402Proxy(config, s, alice, pino({ level: 'silent' }));
  api = await buildApp({
    backend: alice,
    operatorAuth: OperatorAuth.fromKey('agent-economy-operator-key-0123456789'),
    accounts: s,
  });
  await api.listen({ port: 0, host: '127.0.0.1' });
  apiUrl = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await api?.close();
  await proxy?.close();
  await stack?.close();
  await upstream?.stop();
  await alice?.close();
});

async function account(id: string, fundMsat: bigint): Promise<void> {
  await s.ledger.createAccount({ id, kind: 'agent', name: id }).durable;
  await s.policies.set(id, tierPolicy('L2'));
  if (fundMsat === 0n) return;
  const inv = await s.payments.createInvoice(id, { amountMsat: msat(fundMsat), description: 'fund' });
  await pay({ lnd: await rawLnd('bob'), request: inv.request });
  await eventually(
    async () => (balanceOf(await s.ledger.requireAccount(id)) === fundMsat ? true : undefined),
    15_000,
    `funding ${id}`,
  );
}

describe('examples/agent-economy.ts on regtest', () => {
  it('browses, claims, calls the paid model, submits, is paid, and is upgraded by the proxy routing', async () => {
    await account('publisher', 2_000_000n);
    await account('agent-1', 150_000n);
    await s.registry!.advertise('agent-1', {
      title: 'summaries',
      description: '',
      capabilities: ['summarize'],
      priceMsat: msat(1000),
      unit: 'task',
    });
    for (const title of ['summarize the news', 'summarize the paper'])
      await s.market!.publishTask('publisher', {
        title,
        capabilities: ['summarize'],
        rewardMsat: msat(600_000),
        deadlineSeconds: 600,
      });
    const { key } = await s.apiKeys.create({ type: 'operator' }, 'agent-1', ['read', 'invoice', 'pay']);
    // The publisher accepts every result it gets.
    let stop = false;
    const accepting = (async () => {
      while (!stop) {
        const { tasks } = await s.market!.list({ state: 'submitted', accountId: 'publisher' });
        for (const t of tasks) await s.market!.accept(t.id, 'publisher');
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const lines: string[] = [];
    const out = await runAgent({
      api: apiUrl,
      proxy: proxy.url,
      accountId: 'agent-1',
      apiKey: key,
      capability: 'summarize',
      model: 'sample-large',
      tasks: 2,
      print: (l) => void lines.push(l),
    }).finally(() => {
      stop = true;
    });
    await accepting;
    // 150,000 − 100,000 (the credential's credit, bought from its own account) + 2 × 600,000.
    expect(out.models).toEqual(['sample-small', 'sample-large']);
    expect(out.balanceMsat).toBe(150_000n - 100_000n + 1_200_000n);
    // It asked for sample-large both times: the proxy served sample-small while its balance
    // (50,000 msat after buying the credential) was below the tier, sample-large after the reward.
    expect(lines).toContain(
      '[agent] the proxy routed sample-large to sample-small (tier cheap: my balance is below the upgrade threshold)',
    );
    expect(lines).toContain('[agent] served by sample-large (tier strong)');
    expect(lines.filter((l) => l.includes('accepted and paid 600000 msat'))).toHaveLength(2);
  });
});
