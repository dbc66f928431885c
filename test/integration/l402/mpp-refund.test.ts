import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoice, getInvoice, pay } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { createL402Fetch, createMppClient, lndPayer, refundL402 } from '../../../src/index.js';
import { decodeRequest, formatCredential, parseReceipt } from '../../../src/l402/mpp.js';
import { paymentChallenges } from '../../../src/l402/mpp-client.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startL402Proxy, type ProxyHandle } from '../../../src/main.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import type { Config } from '../../../src/config/schema.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';
import { startUpstreamProcess } from '../../support/openai-upstream.js';

let alice: LndBackend;
let bob: LndBackend;
let upstream: Awaited<ReturnType<typeof startUpstreamProcess>>;
let stack: { services: AccountServices; close(): Promise<void> };
let proxy: ProxyHandle;
let config: Config;
let url: string;
const log = pino({ level: 'silent' });

async function start(): Promise<void> {
  stack = await openAccounts(config, alice, log);
  proxy = await startL402Proxy(config, stack.services, alice, log);
  url = proxy.url;
}

beforeAll(async () => {
  [alice, bob] = await Promise.all([backendFor('alice'), backendFor('bob')]);
  upstream = await startUpstreamProcess(2);
  const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-mpp-'));
  const file = join(dataDir, 'proxy.json');
  writeFileSync(
    file,
    JSON.stringify({
      mppRealm: 'coulomb.test',
      services: [
        {
          // MPP only: charge (1 sat a request) and session (a 5-request deposit).
          name: 'health',
          pathPrefix: '/health',
          upstream: upstream.url,
          mode: 'paid',
          pricePerRequestMsat: '1000',
          creditMsat: '5000',
          schemes: ['mpp'],
          mpp: { intents: ['charge', 'session'], depositMultiplier: 5 },
        },
        {
          // Both schemes in one 402, L402 first; L402 credit 10 requests.
          name: 'models',
          pathPrefix: '/v1/models',
          upstream: upstream.url,
          mode: 'paid',
          pricePerRequestMsat: '2000',
          creditMsat: '20000',
          lifetimeSeconds: 3600,
          schemes: ['l402', 'mpp'],
          l402TokenForm: true,
          mpp: { intents: ['charge'] },
        },
      ],
    }),
  );
  config = {
    ...DEFAULTS,
    dataDir,
    proxy: { enabled: true, host: '127.0.0.1', port: 0, samplePort: 0, configFile: file },
  };
  await start();
});
afterAll(async () => {
  await proxy?.close();
  await stack?.close();
  await upstream?.stop();
  await Promise.all([alice?.close(), bob?.close()]);
});

/** An invoice of bob's without an amount; returns it and a reader of what it received. */
async function bobInvoice(): Promise<{ request: string; received: () => Promise<bigint | undefined> }> {
  const lnd = await rawLnd('bob');
  // A return invoice must stay valid at least 30 days (and 2 × the idle timeout).
  const inv = await createInvoice({
    lnd,
    description: 'refund',
    expires_at: new Date(Date.now() + 31 * 24 * 3600_000).toISOString(),
  });
  return {
    request: inv.request,
    received: async () => {
      const got = await getInvoice({ lnd, id: inv.id });
      return got.is_confirmed ? BigInt(got.received_mtokens) : undefined;
    },
  };
}

const bobPayer = () => lndPayer(bob);

describe('MPP on the proxy (regtest)', () => {
  it('an MPP charge paid by bob returns 200 with a receipt; the same credential is then refused', async () => {
    const unpaid = await fetch(url + '/health');
    expect(unpaid.status).toBe(402);
    expect(unpaid.headers.get('content-type')).toBe('application/problem+json');
    expect(unpaid.headers.get('cache-control')).toBe('no-store');
    const problem = (await unpaid.json()) as { type: string; status: number };
    expect(problem).toMatchObject({ type: 'https://paymentauth.org/problems/payment-required', status: 402 });
    const offers = paymentChallenges(unpaid);
    expect(offers.map((o) => o.intent)).toEqual(['charge', 'session']);
    const charge = offers[0]!;
    expect(charge.realm).toBe('coulomb.test');
    const req = decodeRequest(charge.request)!;
    expect(req).toMatchObject({ amount: '1', currency: 'sat', methodDetails: { network: 'regtest' } });

    const paid = await pay({ lnd: await rawLnd('bob'), request: req.methodDetails!.invoice });
    const credential = formatCredential({ challenge: charge, payload: { preimage: paid.secret } });
    const ok = await fetch(url + '/health', { headers: { authorization: credential } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { ok: boolean }).ok).toBe(true);
    const receipt = parseReceipt(ok.headers.get('payment-receipt'));
    expect(receipt).toMatchObject({
      status: 'success',
      method: 'lightning',
      reference: req.methodDetails!.paymentHash,
      challengeId: charge.id,
    });
    expect(ok.headers.get('cache-control')).toBe('private');

    // Used once: refused with a fresh challenge, no receipt.
    const again = await fetch(url + '/health', { headers: { authorization: credential } });
    expect(again.status).toBe(402);
    expect(again.headers.get('payment-receipt')).toBeNull();
    expect(((await again.json()) as { type: string }).type).toBe(
      'https://paymentauth.org/problems/verification-failed',
    );

    // Still refused after a restart: the single use is the ledger's, on disk.
    await proxy.close();
    await stack.close();
    await start();
    const afterRestart = await fetch(url + '/health', { headers: { authorization: credential } });
    expect(afterRestart.status).toBe(402);
    await afterRestart.arrayBuffer();
  });

  it('a forged or tampered challenge is refused', async () => {
    const unpaid = await fetch(url + '/health');
    const charge = paymentChallenges(unpaid)[0]!;
    const forged = formatCredential({
      challenge: { ...charge, realm: 'elsewhere' },
      payload: { preimage: '00'.repeat(32) },
    });
    const res = await fetch(url + '/health', { headers: { authorization: forged } });
    expect(res.status).toBe(402);
    expect(((await res.json()) as { type: string }).type).toBe(
      'https://paymentauth.org/problems/invalid-challenge',
    );
    const garbage = await fetch(url + '/health', { headers: { authorization: 'Payment !!!' } });
    expect(((await garbage.json()) as { type: string }).type).toBe(
      'https://paymentauth.org/problems/malformed-credential',
    );
  });

  it('a session deposit serves several requests and its close refunds exactly the unused amount to bob', async () => {
    const refund = await bobInvoice();
    const client = createMppClient({
      payer: bobPayer(),
      maxCostMsat: 10_000n,
      intent: 'session',
      returnInvoice: () => Promise.resolve(refund.request),
    });
    for (let i = 0; i < 3; i++) {
      const res = await client.fetch(url + '/health');
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect(client.lastReceipt()?.status).toBe('success');
    }
    // Deposit 5,000 msat, three requests at 1,000: 2,000 unused.
    const [closed] = await client.close();
    expect(closed).toMatchObject({
      status: 'closed',
      refundSats: 2,
      refundMsat: '2000',
      refundStatus: 'succeeded',
    });
    expect(await eventually(refund.received, 30_000, 'the refund')).toBe(2000n);
  });

  it('a service offering both schemes answers one 402 with both; an L402 client and an MPP client each succeed', async () => {
    const unpaid = await fetch(url + '/v1/models');
    expect(unpaid.status).toBe(402);
    const value = unpaid.headers.get('www-authenticate')!;
    expect(value.startsWith('LSAT macaroon=')).toBe(true);
    expect(value).toContain('L402 version="0", token="');
    expect(value.indexOf('L402 ')).toBeLessThan(value.indexOf('Payment '));
    await unpaid.arrayBuffer();

    const l402 = createL402Fetch({ payer: bobPayer(), maxCostMsat: 100_000n });
    const a = await l402(url + '/v1/models');
    expect(a.status).toBe(200);
    expect(a.headers.get('payment-receipt')).toBeNull();
    await a.arrayBuffer();

    const mpp = createMppClient({ payer: bobPayer(), maxCostMsat: 100_000n });
    const b = await mpp.fetch(url + '/v1/models');
    expect(b.status).toBe(200);
    expect(mpp.lastReceipt()?.status).toBe('success');
    await b.arrayBuffer();

    const discovery = (await (await fetch(url + '/.well-known/l402.json')).json()) as {
      services: { name: string; schemes: string[] }[];
    };
    // Listed in matching order (longest path prefix first): compare by name.
    const byName = [...discovery.services].sort((a, b) => a.name.localeCompare(b.name));
    expect(byName.map((s) => [s.name, s.schemes])).toEqual([
      ['health', ['Payment']],
      ['models', ['L402', 'Payment']],
    ]);
  });

  it("an L402 credential's refund pays bob exactly the unused credit once, then the credential is refused", async () => {
    const credentials = new Map<string, string>();
    const l402 = createL402Fetch({ payer: bobPayer(), maxCostMsat: 100_000n, credentials });
    for (let i = 0; i < 3; i++) {
      const res = await l402(url + '/v1/models');
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const authorization = credentials.get(new URL(url).origin)!;
    const mac = /^L402 ([^:]+):/.exec(authorization)![1]!;
    const tokenAccount = `l402:${decodeV2(Buffer.from(mac, 'base64')).identifier.subarray(34).toString('hex')}`;
    const refund = await bobInvoice();
    // 20,000 of credit, three requests at 2,000: 14,000 unused. Two closes at once: one refund.
    const [first, second] = await Promise.all([
      refundL402({ proxyUrl: url, service: 'models', authorization, to: { invoice: refund.request } }),
      refundL402({ proxyUrl: url, service: 'models', authorization, to: { invoice: refund.request } }),
    ]);
    expect(first.refundMsat).toBe('14000');
    expect(second.refundMsat).toBe('14000');
    expect(first.paymentId).toBe(second.paymentId);
    expect([first.status, second.status]).toContain('succeeded');
    expect(await eventually(refund.received, 30_000, 'the refund')).toBe(14000n);

    // Refused from now on, and a third close replays the same refund (no second payment).
    const after = await fetch(url + '/v1/models', { headers: { authorization } });
    expect(after.status).toBe(402);
    expect(((await after.json()) as { code: string }).code).toBe('CREDENTIAL_REVOKED');
    const third = await refundL402({
      proxyUrl: url,
      service: 'models',
      authorization,
      to: { invoice: (await bobInvoice()).request },
    });
    expect(third).toMatchObject({ status: 'succeeded', refundMsat: '14000', paymentId: first.paymentId });
    await stack.services.ledger.flush();
    expect(balanceOf(await stack.services.ledger.requireAccount(tokenAccount))).toBe(0n);
  });
});
