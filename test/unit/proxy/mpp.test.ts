import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Gate } from '../../../src/l402/gate.js';
import { decodeRequest, formatCredential } from '../../../src/l402/mpp.js';
import { paymentChallenges } from '../../../src/l402/mpp-client.js';
import { closeL402Credential, CreditRefunds } from '../../../src/l402/refund.js';
import { L402Revocations } from '../../../src/l402/revocations.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { availableOf } from '../../../src/ledger/types.js';
import { msat } from '../../../src/domain/msat.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { MppGate } from '../../../src/proxy/mpp.js';
import { createProxy } from '../../../src/proxy/server.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let echo: Server;
let proxy: Server;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let gate: L402Gate;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  echo = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const upstream = await listen(echo);
  f = await paymentsFixture();
  const { services } = parseProxyConfig({
    services: [
      {
        name: 'both',
        pathPrefix: '/both/',
        upstream,
        mode: 'paid',
        pricePerRequestMsat: '1000',
        creditMsat: '5000',
        schemes: ['l402', 'mpp'],
        mpp: { intents: ['charge'] },
      },
    ],
  });
  const authority = new L402Authority(Buffer.alloc(32, 1));
  gate = new L402Gate(authority, f.lightning, f.service);
  const revocations = new L402Revocations(f.ledger, authority);
  const refunds = new CreditRefunds(f.ledger, f.service, f.policies, f.lightning);
  proxy = createProxy({
    services,
    gate,
    ledger: f.ledger,
    log: silentLog,
    mpp: new MppGate({
      secret: Buffer.alloc(32, 2),
      realm: 'test',
      backend: f.lightning,
      invoices: f.service,
      records: f.ledger,
    }),
    refunds: {
      refunds,
      sessionRefundMaxFeeMsat: msat(0n),
      closeL402: (authorization, service, destination, flush) =>
        closeL402Credential({ authority, revocations, refunds }, authorization, service, destination, flush),
    },
  });
  url = await listen(proxy);
});
afterAll(() => {
  f.service.stop();
  proxy.closeAllConnections();
  proxy.close();
  echo.close();
});

describe('MPP charge on the proxy', () => {
  it('two concurrent presentations of one charge credential: exactly one is served', async () => {
    const unpaid = await fetch(`${url}/both/x`);
    expect(unpaid.status).toBe(402);
    const charge = paymentChallenges(unpaid).find((c) => c.intent === 'charge')!;
    const hash = decodeRequest(charge.request)!.methodDetails!.paymentHash!;
    const preimage = f.lightning.invoices.get(hash)!.preimage!;
    const authorization = formatCredential({ challenge: charge, payload: { preimage } });
    const answers = await Promise.all(
      [1, 2, 3].map(() => fetch(`${url}/both/x`, { headers: { authorization } })),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([200, 402, 402]);
    expect(answers.filter((r) => r.headers.get('payment-receipt')).length).toBe(1);
    await Promise.all(answers.map((r) => r.arrayBuffer()));
  });
});

describe('refund of an L402 credential', () => {
  it('concurrent closes refund once, to an account; the credential is then refused', async () => {
    await f.account('holder', 0n);
    const c = await gate.challenge({ name: 'both', creditMsat: msat(5000n), lifetimeSeconds: 60 });
    const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
    const authorization = `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${url}/both/x`, { headers: { authorization } });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
    const close = (): Promise<Response> =>
      fetch(`${url}/l402/refund?service=both`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ accountId: 'holder' }),
      });
    const answers = await Promise.all([close(), close(), close()]);
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as {
      refundMsat: string;
      transferId: string;
    }[];
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(bodies.map((b) => b.transferId)).size).toBe(1);
    expect(bodies[0]!.refundMsat).toBe('3000');
    await f.ledger.ensure({ accounts: ['holder', `l402:${c.tokenId}`] });
    expect(availableOf(f.ledger.accountNow('holder')!)).toBe(3000n);
    expect(availableOf(f.ledger.accountNow(`l402:${c.tokenId}`)!)).toBe(0n);
    const refused = await fetch(`${url}/both/x`, { headers: { authorization } });
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { code: string }).code).toBe('CREDENTIAL_REVOKED');
  });

  it('refuses a close without a valid credential or with a bad destination', async () => {
    const bad = await fetch(`${url}/l402/refund?service=both`, {
      method: 'POST',
      headers: { authorization: 'L402 AAAA:' + '00'.repeat(32), 'content-type': 'application/json' },
      body: JSON.stringify({ accountId: 'holder' }),
    });
    expect(bad.status).toBe(401);
    const shape = await fetch(`${url}/l402/refund?service=both`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ somewhere: 'x' }),
    });
    expect(shape.status).toBe(400);
    expect(((await shape.json()) as { error: { code: string } }).error.code).toBe('INVALID_REFUND_REQUEST');
  });
});
