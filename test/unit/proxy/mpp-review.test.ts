import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { decodeRequest, formatCredential, type MppPayload } from '../../../src/l402/mpp.js';
import { paymentChallenges } from '../../../src/l402/mpp-client.js';
import { closeL402Credential, CreditRefunds } from '../../../src/l402/refund.js';
import { L402Revocations } from '../../../src/l402/revocations.js';
import { msat } from '../../../src/domain/msat.js';
import { parseProxyConfig, type Service } from '../../../src/proxy/config.js';
import { MppGate } from '../../../src/proxy/mpp.js';
import { createProxy } from '../../../src/proxy/server.js';
import { availableOf } from '../../../src/ledger/types.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

let echo: Server;
let proxy: Server;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let gate: L402Gate;
let live: Service[] = [];
let upstream: string;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );
const parse = (extra: Record<string, unknown>[]): Service[] => [
  ...parseProxyConfig({ services: extra }).services,
];
const svc = (name: string, more: Record<string, unknown> = {}): Record<string, unknown> => ({
  name,
  pathPrefix: `/${name}/`,
  upstream,
  mode: 'paid',
  pricePerRequestMsat: '1000',
  creditMsat: '5000',
  schemes: ['l402', 'mpp'],
  ...more,
});

beforeAll(async () => {
  echo = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  upstream = await listen(echo);
  f = await paymentsFixture();
  live = parse([svc('both')]);
  const authority = new L402Authority(Buffer.alloc(32, 1));
  gate = new L402Gate(authority, f.lightning, f.service);
  const revocations = new L402Revocations(f.ledger, authority);
  const refunds = new CreditRefunds(f.ledger, f.service, f.policies, f.lightning);
  proxy = createProxy({
    services: parse([svc('both')]),
    catalog: { current: () => live },
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

describe('a both-schemes 402 when LND fails', () => {
  it('answers the usual error and leaves no rejection unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const orig = f.lightning.createInvoice.bind(f.lightning);
    f.lightning.createInvoice = () => Promise.reject(new Error('lnd unavailable'));
    try {
      const r = await fetch(`${url}/both/y`);
      expect(r.status).toBeGreaterThanOrEqual(500);
      expect(((await r.json()) as { error: { code: string } }).error.code).toMatch(/^[A-Z_]+$/);
      // Let any orphaned rejection surface (the event fires after a macrotask turn).
      await new Promise((res) => setImmediate(res));
      await new Promise((res) => setImmediate(res));
    } finally {
      f.lightning.createInvoice = orig;
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});

describe('/l402/refund and the live catalog', () => {
  it('refunds a credential of a service added live, and refuses one of a service removed live', async () => {
    await f.account('holder2', 0n);
    live = parse([svc('both'), svc('added')]);
    const c = await gate.challenge({ name: 'added', creditMsat: msat(5000n), lifetimeSeconds: 60 });
    const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
    const authorization = `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
    const served = await fetch(`${url}/added/x`, { headers: { authorization } });
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    const close = (service: string): Promise<Response> =>
      fetch(`${url}/l402/refund?service=${service}`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ accountId: 'holder2' }),
      });
    live = parse([svc('added')]);
    const removed = await close('both');
    expect(removed.status).toBe(404);
    await removed.arrayBuffer();
    const ok = await close('added');
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { refundMsat: string }).refundMsat).toBe('4000');
  });
});

describe('an MPP charge credential buys one request', () => {
  const chargeCredential = async (prefix: string): Promise<string> => {
    const unpaid = await fetch(`${url}/${prefix}/x`);
    expect(unpaid.status).toBe(402);
    const charge = paymentChallenges(unpaid).find((c) => c.intent === 'charge')!;
    const hash = decodeRequest(charge.request)!.methodDetails!.paymentHash!;
    return formatCredential({
      challenge: charge,
      payload: { preimage: f.lightning.invoices.get(hash)!.preimage! },
    });
  };
  const statuses = async (prefix: string, authorization: string, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${url}/${prefix}/x`, { headers: { authorization } });
      await r.arrayBuffer();
      out.push(r.status);
    }
    return out;
  };

  it('when the price is below a whole sat (the invoice rounds up)', async () => {
    live = parse([svc('cheap', { pricePerRequestMsat: '100', schemes: ['mpp'] })]);
    const authorization = await chargeCredential('cheap');
    expect(await statuses('cheap', authorization, 4)).toEqual([200, 402, 402, 402]);
  });

  it('after a live price cut, and still once (at its quoted price) after a live price rise', async () => {
    live = parse([svc('moving', { schemes: ['mpp'] })]);
    const cut = await chargeCredential('moving');
    const rise = await chargeCredential('moving');
    live = parse([svc('moving', { pricePerRequestMsat: '400', schemes: ['mpp'] })]);
    expect(await statuses('moving', cut, 3)).toEqual([200, 402, 402]);
    live = parse([svc('moving', { pricePerRequestMsat: '2000', schemes: ['mpp'] })]);
    expect(await statuses('moving', rise, 2)).toEqual([200, 402]);
  });
});

describe('the refund of an MPP session whose return invoice cannot be paid', () => {
  const DAY = 24 * 3600_000;
  const open = async (
    returnInvoice?: string,
  ): Promise<{ status: number; cred: (p: object) => string; id: string }> => {
    const unpaid = await fetch(`${url}/both/x`);
    const offer = paymentChallenges(unpaid).find((c) => c.intent === 'session')!;
    const id = decodeRequest(offer.request)!.paymentHash!;
    const preimage = f.lightning.invoices.get(id)!.preimage!;
    const r = await fetch(`${url}/both/x`, {
      headers: {
        authorization: formatCredential({
          challenge: offer,
          payload: { action: 'open', preimage, ...(returnInvoice ? { returnInvoice } : {}) },
        }),
      },
    });
    await r.arrayBuffer();
    return {
      status: r.status,
      id,
      cred: (p) =>
        formatCredential({ challenge: offer, payload: { sessionId: id, preimage, ...p } as MppPayload }),
    };
  };
  const close = async (authorization: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${url}/both/x`, { headers: { authorization } });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it('refuses at open a return invoice that would expire before the session could end', async () => {
    live = parse([svc('both')]);
    const short = fakeRequest({ amountMsat: msat(0n), expiresAt: Date.now() + DAY }).request;
    expect((await open(short)).status).toBe(402);
    const long = fakeRequest({ amountMsat: msat(0n), expiresAt: Date.now() + 31 * DAY }).request;
    expect((await open(long)).status).toBe(200);
  });

  it('closes with refundStatus failed, keeps the deposit, and refunds it to a return invoice given at a later close', async () => {
    live = parse([svc('both')]);
    const ret = fakeRequest({ amountMsat: msat(0n), expiresAt: Date.now() + 31 * DAY }).request;
    const s = await open(ret);
    expect(s.status).toBe(200);
    // The return invoice has expired by the time of the close.
    const decode = f.lightning.decodeInvoice.bind(f.lightning);
    f.lightning.decodeInvoice = async (r) => ({
      ...(await decode(r)),
      isExpired: r === ret || (await decode(r)).isExpired,
    });
    try {
      const first = await close(s.cred({ action: 'close' }));
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({
        status: 'closed',
        refundStatus: 'failed',
        unrefundedMsat: '19000',
        error: { code: 'RETURN_INVOICE_INVALID' },
      });
      const bearer = await fetch(`${url}/both/x`, {
        headers: { authorization: s.cred({ action: 'bearer' }) },
      });
      expect(bearer.status).toBe(402);
      await bearer.arrayBuffer();
      const fresh = fakeRequest({ amountMsat: msat(0n) }).request;
      const second = await close(s.cred({ action: 'close', returnInvoice: fresh }));
      expect(second.status).toBe(200);
      expect(second.body).toMatchObject({ refundStatus: 'succeeded', refundMsat: '19000' });
      await f.ledger.ensure({ accounts: [`mpp:${s.id}`] });
      expect(availableOf(f.ledger.accountNow(`mpp:${s.id}`)!)).toBe(0n);
      // Closing again answers the refund made.
      expect((await close(s.cred({ action: 'close' }))).body).toMatchObject({ refundMsat: '19000' });
    } finally {
      f.lightning.decodeInvoice = decode;
    }
  });

  it('a session opened without a return invoice is refunded to one given at close', async () => {
    live = parse([svc('both')]);
    const s = await open();
    const first = await close(s.cred({ action: 'close' }));
    expect(first.body).toMatchObject({ refundStatus: 'failed', error: { code: 'RETURN_INVOICE_REQUIRED' } });
    const ret = fakeRequest({ amountMsat: msat(0n) }).request;
    const second = await close(s.cred({ action: 'close', returnInvoice: ret }));
    expect(second.body).toMatchObject({ refundStatus: 'succeeded', refundMsat: '19000' });
  });
});

describe('the fee reserve of a refund', () => {
  it('states the part of maxFeeMsat the refund payment did not use', async () => {
    live = parse([svc('both')]);
    const c = await gate.challenge({ name: 'both', creditMsat: msat(5000n), lifetimeSeconds: 60 });
    const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
    const authorization = `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
    const served = await fetch(`${url}/both/x`, { headers: { authorization } });
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    const invoice = fakeRequest({ amountMsat: msat(0n) }).request;
    // 4,000 left, 3,000 held back as fee reserve; the fake node's payments cost 1,000 of fee.
    const r = await fetch(`${url}/l402/refund?service=both`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ invoice, maxFeeMsat: '3000' }),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({
      status: 'succeeded',
      refundMsat: '1000',
      feeMsat: '1000',
      unusedFeeReserveMsat: '2000',
    });
  });
});
