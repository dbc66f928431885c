import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchWithL402 } from '@getalby/lightning-tools/402/l402';
import { pay } from 'ln-service';
import OpenAI from 'openai';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import { accountPayer, createL402Fetch, lndPayer } from '../../../src/index.js';
import { decodeV2, encodeV2 } from '../../../src/l402/macaroon.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startL402Proxy, type ProxyHandle } from '../../../src/main.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, rawLnd } from '../../support/regtest.js';
import { startUpstreamProcess } from '../../support/openai-upstream.js';

let alice: LndBackend;
let bob: LndBackend;
let upstream: Awaited<ReturnType<typeof startUpstreamProcess>>;
let stack: { services: AccountServices; close(): Promise<void> };
let proxy: ProxyHandle;
let url: string;
let api: CoulombApp;
const OPERATOR_KEY = 'l402-integration-operator-key-0123456789';

const IN = 2n; // msat per input token
const OUT = 1000n; // msat per output token

beforeAll(async () => {
  [alice, bob] = await Promise.all([backendFor('alice'), backendFor('bob')]);
  upstream = await startUpstreamProcess(2);
  const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-l402-'));
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
          models: { '*': { inputPerTokenMsat: String(IN), outputPerTokenMsat: String(OUT) } },
          creditMsat: '100000',
          lifetimeSeconds: 3600,
          capabilities: ['chat'],
        },
        {
          name: 'other',
          pathPrefix: '/other/',
          upstream: upstream.url,
          mode: 'paid',
          pricePerRequestMsat: '1000',
          creditMsat: '5000',
          lifetimeSeconds: 3600,
        },
        {
          name: 'brief',
          pathPrefix: '/brief/',
          upstream: upstream.url,
          mode: 'paid',
          pricePerRequestMsat: '1000',
          creditMsat: '5000',
          lifetimeSeconds: 1,
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
  proxy = await startL402Proxy(config, stack.services, alice, pino({ level: 'silent' }));
  url = proxy.url;
  api = await buildApp({
    backend: alice,
    operatorAuth: OperatorAuth.fromKey(OPERATOR_KEY),
    accounts: stack.services,
  });
});
afterAll(async () => {
  await api?.close();
  await proxy?.close();
  await stack?.close();
  await upstream?.stop();
  await Promise.all([alice?.close(), bob?.close()]);
});

const chat = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: 'sample-small',
    messages: [{ role: 'user', content: 'say something' }],
    max_tokens: 8,
    ...extra,
  });

async function post(path: string, body: string, authorization?: string): Promise<Response> {
  return fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body,
  });
}

/** Asks for a challenge and pays it from bob's node: returns a working Authorization header. */
async function buyCredential(
  path = '/v1/chat/completions',
): Promise<{ authorization: string; tokenAccount: string; macaroon: string; preimage: string }> {
  const challenge = await post(path, chat());
  expect(challenge.status).toBe(402);
  const header = challenge.headers.get('www-authenticate')!;
  const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(header)!;
  const paid = await pay({ lnd: await rawLnd('bob'), request: m[2]! });
  const tokenId = decodeV2(Buffer.from(m[1]!, 'base64')).identifier.subarray(34).toString('hex');
  return {
    authorization: `L402 ${m[1]}:${paid.secret}`,
    tokenAccount: `l402:${tokenId}`,
    macaroon: m[1]!,
    preimage: paid.secret,
  };
}

describe('L402 proxy on regtest', () => {
  it('answers an unpaid request with a 402 and both challenge headers, LSAT first', async () => {
    const res = await post('/v1/chat/completions', chat());
    expect(res.status).toBe(402);
    expect(res.headers.get('cache-control')).toBe('no-store');
    // fetch joins repeated headers with ", ".
    const headers = res.headers.get('www-authenticate')!.split(/,\s*(?=L402 )/);
    expect(headers[0]).toMatch(/^LSAT macaroon="[A-Za-z0-9+/=]+", invoice="lnbcrt[0-9a-z]+"$/);
    expect(headers[1]).toMatch(/^L402 macaroon="[A-Za-z0-9+/=]+", invoice="lnbcrt[0-9a-z]+"$/);
    const mac = /macaroon="([^"]+)"/.exec(headers[0]!)![1]!;
    const decoded = decodeV2(Buffer.from(mac, 'base64'));
    expect(decoded.location).toBe('lsat');
    expect(decoded.identifier.length).toBe(66);
    expect(decoded.caveats).toEqual([
      'services=llm:0',
      'llm_capabilities=chat',
      expect.stringMatching(/^llm_valid_until=\d+$/),
    ]);
  });

  it('proxies the retried request once bob paid, and reports the remaining credit', async () => {
    const { authorization } = await buyCredential();
    const res = await post('/v1/chat/completions', chat(), authorization);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      choices: { message: { content: string } }[];
      usage: { completion_tokens: number };
    };
    expect(body.usage.completion_tokens).toBe(8);
    expect(Number(res.headers.get('x-l402-credit-remaining-msat'))).toBeGreaterThan(0);
  });

  it('charges exactly the usage the upstream reports', async () => {
    const { authorization, tokenAccount } = await buyCredential();
    await post('/v1/chat/completions', chat({ max_tokens: 1 }), authorization); // books the credit
    const before = balanceOf(await stack.services.ledger.requireAccount(tokenAccount));
    const res = await post('/v1/chat/completions', chat({ max_tokens: 5 }), authorization);
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    await stack.services.ledger.flush();
    const after = balanceOf(await stack.services.ledger.requireAccount(tokenAccount));
    expect(before - after).toBe(BigInt(usage.prompt_tokens) * IN + BigInt(usage.completion_tokens) * OUT);

    // Streams bill the usage chunk the proxy asked for.
    const s = await post('/v1/chat/completions', chat({ max_tokens: 4, stream: true }), authorization);
    const text = await s.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    const usageChunk = JSON.parse(
      text
        .split('\n\n')
        .find((e) => e.includes('"usage"'))!
        .slice(6),
    ) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const afterStream = balanceOf(await stack.services.ledger.requireAccount(tokenAccount));
    // The stream's last word before [DONE] is what the credential has left after this charge.
    expect(text).toContain(`: coulomb-credit-remaining-msat=${afterStream}\n\ndata: [DONE]`);
    expect(after - afterStream).toBe(
      BigInt(usageChunk.usage.prompt_tokens) * IN + BigInt(usageChunk.usage.completion_tokens) * OUT,
    );
  });

  it('cuts a stream cleanly when the credit runs out, then a top-up restores it', async () => {
    const { authorization, tokenAccount } = await buyCredential();
    // No max_tokens: the whole credit (100,000 msat = 100 output tokens at most) is at stake.
    const res = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'go' }], stream: true }),
      authorization,
    );
    expect(res.status).toBe(200);
    const all = (await res.text()).split('\n\n').filter(Boolean);
    // The final figure is an SSE comment (which SSE clients skip) just before [DONE].
    expect(all[all.length - 2]).toBe(': coulomb-credit-remaining-msat=0');
    const events = all.filter((e) => !e.startsWith(':'));
    expect(events[events.length - 1]).toBe('data: [DONE]');
    const last = JSON.parse(events[events.length - 2]!.slice(6)) as { choices: { finish_reason: string }[] };
    expect(last.choices[0]!.finish_reason).toBe('length');
    const words = events.filter((e) => e.includes('"content":"')).length;
    expect(words).toBeGreaterThan(10);
    expect(words).toBeLessThan(200); // cut well before the upstream's 200 words
    expect(balanceOf(await stack.services.ledger.requireAccount(tokenAccount))).toBe(0n);
    // The credential is out of credit: a new challenge, not the resource.
    expect((await post('/v1/chat/completions', chat(), authorization)).status).toBe(402);
    const top = await fetch(`${url}/l402/topup?service=llm&amountMsat=50000`, {
      method: 'POST',
      headers: { authorization },
    });
    const { invoice } = (await top.json()) as { invoice: string };
    await pay({ lnd: await rawLnd('bob'), request: invoice });
    for (let i = 0; i < 50 && balanceOf(await stack.services.ledger.requireAccount(tokenAccount)) === 0n; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(balanceOf(await stack.services.ledger.requireAccount(tokenAccount))).toBe(50_000n);
    expect((await post('/v1/chat/completions', chat({ max_tokens: 2 }), authorization)).status).toBe(200);
  });

  it('refuses a credential for another service, and expired, tampered or wrong-preimage credentials', async () => {
    const { authorization, macaroon, preimage } = await buyCredential();
    expect((await post('/other/x', '{}', authorization)).status).toBe(402);
    expect((await post('/v1/chat/completions', chat(), `L402 ${macaroon}:${'00'.repeat(32)}`)).status).toBe(
      402,
    );
    const m = decodeV2(Buffer.from(macaroon, 'base64'));
    m.caveats[0] = 'services=llm:0,other:0';
    expect(
      (await post('/v1/chat/completions', chat(), `L402 ${encodeV2(m).toString('base64')}:${preimage}`))
        .status,
    ).toBe(402);
    const brief = await buyCredential('/brief/x');
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await post('/brief/x', '{}', brief.authorization);
    expect(expired.status).toBe(402);
    expect(((await expired.json()) as { error: { message: string } }).error.message).toMatch(/expired/);
  });

  it('refuses a paid, used credential on its next request once the operator revokes it', async () => {
    const { authorization, tokenAccount } = await buyCredential();
    expect((await post('/v1/chat/completions', chat(), authorization)).status).toBe(200);
    const tokenId = tokenAccount.slice('l402:'.length);
    const revoked = await api.inject({
      method: 'POST',
      url: '/v1/l402/credentials/revoke',
      headers: { authorization: `Bearer ${OPERATOR_KEY}` },
      payload: { credential: authorization, reason: 'integration test' },
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ tokenId, reason: 'integration test' });
    const refused = await post('/v1/chat/completions', chat(), authorization);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_REVOKED');
    const listed = await api.inject({
      method: 'GET',
      url: '/v1/l402/credentials/revoked',
      headers: { authorization: `Bearer ${OPERATOR_KEY}` },
    });
    expect(
      (listed.json() as { revocations: { tokenId: string }[] }).revocations.map((r) => r.tokenId),
    ).toContain(tokenId);
  });

  it('lets an agent account of this gateway pay the challenge internally, within its policy', async () => {
    const s = stack.services;
    await s.ledger.createAccount({ id: 'l402-agent', kind: 'agent', name: 'agent' }).durable;
    await s.policies.set('l402-agent', tierPolicy('L1'));
    await s.ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: 'l402-agent',
      amount: msat(1_000_000),
      code: 'funding',
    }).durable;
    const l402 = createL402Fetch({
      maxCostMsat: 200_000n,
      payer: {
        pay: async (invoice) => {
          const p = await s.payments.pay('l402-agent', { request: invoice });
          expect(p.kind).toBe('internal');
          return { preimage: p.preimage! };
        },
      },
    });
    const res = await l402(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chat(),
    });
    expect(res.status).toBe(200);
    expect(balanceOf(await s.ledger.requireAccount('l402-agent'))).toBe(900_000n);
  });

  it('works unchanged in the openai npm client through the SDK fetch, streams included', async () => {
    const paid: bigint[] = [];
    const client = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: 'not-used-the-proxy-injects-upstream-keys',
      fetch: createL402Fetch({
        payer: lndPayer(bob),
        maxCostMsat: 1_000_000n,
        onPayment: (p) => paid.push(p.amountMsat),
      }),
    });
    const completion = await client.chat.completions.create({
      model: 'sample-small',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 3,
    });
    expect(completion.choices[0]!.message.content).toBe('lightning pays for');
    const stream = await client.chat.completions.create({
      model: 'sample-small',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 3,
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('lightning pays for');
    expect(paid).toEqual([100_000n]); // one payment, the credential was reused
  });

  it("interoperates with Alby's lightning-tools L402 client", async () => {
    const lnd = await rawLnd('bob');
    const res = await fetchWithL402(
      `${url}/v1/chat/completions`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: chat() },
      {
        wallet: {
          payInvoice: async ({ invoice }) => ({ preimage: (await pay({ lnd, request: invoice })).secret }),
        },
      },
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { object: string }).object).toBe('chat.completion');
  });

  it('publishes discovery and quotes', async () => {
    const d = (await (await fetch(`${url}/.well-known/l402.json`)).json()) as {
      services: { name: string }[];
    };
    // Listed in matching order (longest path prefix first), not the config's order: compare as a set.
    expect(d.services.map((s) => s.name).sort()).toEqual(['brief', 'llm', 'other']);
    const q = (await (await fetch(`${url}/l402/quote?service=llm&prompt_tokens=10&max_tokens=5`)).json()) as {
      estimateMsat: string;
    };
    expect(q.estimateMsat).toBe(String(10n * IN + 5n * OUT));
    void accountPayer;
  });
});
