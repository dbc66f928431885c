import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { L402Authority } from '../../../src/l402/authority.js';
import { credentialAccountId, L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { availableOf } from '../../../src/ledger/types.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { BudgetRouter } from '../../../src/proxy/routing.js';
import { createProxy } from '../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let upstream: Server;
let proxy: Server;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let gate: L402Gate;
/** The models the upstream was asked for. */
const seen: string[] = [];
/** The payer's available balance, as the ledger would tell it. */
let payerBalance = 0n;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const model = (JSON.parse(raw) as { model: string }).model;
      seen.push(model);
      const body = JSON.stringify({
        model,
        choices: [{ index: 0, message: { content: 'ok' } }],
        usage: { prompt_tokens: 3, completion_tokens: 2 },
      });
      // Headers only the proxy may state: dropped.
      res.writeHead(200, {
        'content-type': 'application/json',
        'coulomb-model-routed': 'spoofed',
        'coulomb-budget-tier': 'spoofed',
      });
      res.end(body);
    });
  });
  const upstreamUrl = await listen(upstream);
  f = await paymentsFixture();
  const { services } = parseProxyConfig({
    services: [
      {
        name: 'llm',
        pathPrefix: '/v1/',
        upstream: upstreamUrl,
        mode: 'paid',
        models: {
          strong: { inputPerTokenMsat: '100', outputPerTokenMsat: '100' },
          small: { inputPerTokenMsat: '1', outputPerTokenMsat: '1' },
        },
        creditMsat: '10000',
        routing: {
          tiers: [
            { name: 'normal', minBalanceMsat: '1000' },
            { name: 'low', minBalanceMsat: '100', models: { strong: 'small' } },
          ],
        },
      },
    ],
  });
  gate = new L402Gate(new L402Authority(Buffer.alloc(32, 7)), f.lightning, f.service);
  const router = new BudgetRouter({
    payerOf: () => Promise.resolve('payer'),
    availableOf: (id) => Promise.resolve(id === 'payer' ? payerBalance : undefined),
  });
  proxy = createProxy({ services, gate, ledger: f.ledger, log: silentLog, router });
  url = await listen(proxy);
});
afterAll(() => {
  f.service.stop();
  proxy.closeAllConnections();
  proxy.close();
  upstream.close();
});

async function credential(): Promise<{ header: string; accountId: string }> {
  const c = await gate.challenge({ name: 'llm', creditMsat: msat(10_000), lifetimeSeconds: 60 });
  const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
  return {
    header: `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`,
    accountId: credentialAccountId(c.tokenId),
  };
}

const ask = (authorization: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'strong', max_tokens: 2, messages: [{ role: 'user', content: 'x' }] }),
  });

const available = async (id: string): Promise<bigint> => {
  await f.ledger.flush();
  return availableOf(f.ledger.accountNow(id)!);
};

describe('the proxy with budget-aware routing', () => {
  it('serves, reroutes (billing the served model) and refuses before the upstream by the payer tier', async () => {
    const { header, accountId } = await credential();
    payerBalance = 5000n;
    const strong = await ask(header);
    expect(strong.status).toBe(200);
    expect(strong.headers.get('coulomb-budget-tier')).toBe('normal');
    expect(strong.headers.get('coulomb-model-routed')).toBeNull();
    await strong.text();
    expect(seen).toEqual(['strong']);
    expect(await available(accountId)).toBe(10_000n - 5n * 100n);

    payerBalance = 999n;
    const routed = await ask(header);
    expect(routed.headers.get('coulomb-model-routed')).toBe('strong;served=small;tier=low');
    expect(((await routed.json()) as { model: string }).model).toBe('small');
    expect(seen).toEqual(['strong', 'small']);
    expect(await available(accountId)).toBe(10_000n - 500n - 5n);

    payerBalance = 99n;
    const refused = await ask(header);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: { code: 'PAYER_BELOW_LAST_TIER', tier: 'low' } });
    expect(seen).toEqual(['strong', 'small']);
    expect(await available(accountId)).toBe(10_000n - 505n);
  });
});
