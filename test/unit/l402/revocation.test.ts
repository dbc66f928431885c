import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { L402Authority } from '../../../src/l402/authority.js';
import { credentialAccountId, credentialExpiry, L402Gate } from '../../../src/l402/gate.js';
import { decodeV2, encodeV2 } from '../../../src/l402/macaroon.js';
import { L402Revocations } from '../../../src/l402/revocations.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { parseProxyConfig } from '../../../src/proxy/config.js';
import { createProxy } from '../../../src/proxy/server.js';
import { cliAgainst } from '../../support/cli.js';
import { accountsApp, paymentsFixture, silentLog } from '../../support/payments-fixture.js';

const OP = 'operator-key-for-l402-tests-0123456789';
const op = { authorization: `Bearer ${OP}` };
const SECRET = Buffer.alloc(32, 3);

let upstream: Server;
let proxy: Server;
let proxyUrl: string;
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let authority: L402Authority;
let gate: L402Gate;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('ok'));
  const upstreamUrl = await listen(upstream);
  f = await paymentsFixture();
  authority = new L402Authority(SECRET);
  const revocations = new L402Revocations(f.ledger, authority);
  await revocations.load();
  gate = new L402Gate(authority, f.lightning, f.service);
  const { services } = parseProxyConfig({
    services: [
      {
        name: 'fixed',
        pathPrefix: '/fixed/',
        upstream: upstreamUrl,
        mode: 'paid',
        pricePerRequestMsat: '10',
        creditMsat: '1000',
      },
    ],
  });
  proxy = createProxy({ services, gate, ledger: f.ledger, log: silentLog });
  proxyUrl = await listen(proxy);
  app = await accountsApp(f, OP, { l402: { authority, revocations } });
});
afterAll(async () => {
  f.service.stop();
  proxy.closeAllConnections();
  proxy.close();
  upstream.close();
  await app.close();
});

/** A paid credential: the challenge's invoice is settled by presenting its preimage. */
async function credential(): Promise<{ header: string; macaroon: string; tokenId: string }> {
  const c = await gate.challenge({ name: 'fixed', creditMsat: 1000n as never, lifetimeSeconds: 600 });
  const hash = decodeV2(Buffer.from(c.macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');
  return {
    header: `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`,
    macaroon: c.macaroon,
    tokenId: c.tokenId,
  };
}

const get = (authorization: string) => fetch(`${proxyUrl}/fixed/x`, { headers: { authorization } });

const revoke = (payload: Record<string, string>, headers: Record<string, string> = op) =>
  app.inject({ method: 'POST', url: '/v1/l402/credentials/revoke', headers, payload });

describe('L402 revocation through the operator API', () => {
  it('refuses a credential on its very next request once revoked by token id', async () => {
    const c = await credential();
    const before = await get(c.header);
    expect(before.status).toBe(200);
    await before.arrayBuffer();
    const res = await revoke({ tokenId: c.tokenId, reason: 'abuse' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tokenId: c.tokenId, reason: 'abuse', revokedAt: expect.any(Number) });
    const after = await get(c.header);
    expect(after.status).toBe(402);
    expect(after.headers.get('www-authenticate')).toMatch(/^LSAT macaroon=/);
    expect(((await after.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_REVOKED');
    const topUp = await fetch(`${proxyUrl}/l402/topup?service=fixed&amountMsat=100`, {
      method: 'POST',
      headers: { authorization: c.header },
    });
    expect(topUp.status).toBe(401);
    expect(((await topUp.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_REVOKED');
    // Revoking again answers the first revocation.
    const again = await revoke({ tokenId: c.tokenId });
    expect(again.json()).toEqual(res.json());
  });

  it('revokes by the credential itself, or by its macaroon alone, paid or not', async () => {
    const c = await credential();
    expect((await get(c.header)).status).toBe(200);
    expect((await revoke({ credential: c.header })).json()).toMatchObject({ tokenId: c.tokenId });
    expect((await get(c.header)).status).toBe(402);

    const unpaid = await credential();
    expect((await revoke({ credential: unpaid.macaroon })).json()).toMatchObject({
      tokenId: unpaid.tokenId,
    });
    const r = await get(unpaid.header);
    expect(r.status).toBe(402);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_REVOKED');
  });

  it('answers unknown token ids with 404 and what is not a credential of this gateway with 400', async () => {
    const unknown = await revoke({ tokenId: 'ab'.repeat(32) });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('CREDENTIAL_NOT_FOUND');
    const foreign = new L402Authority(Buffer.alloc(32, 9)).mint({
      paymentHash: Buffer.alloc(32, 1),
      service: 'fixed',
      lifetimeSeconds: 60,
    });
    for (const credential of [foreign.macaroon, 'L402 AAAA:' + '00'.repeat(32), 'not a credential']) {
      const res = await revoke({ credential });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('INVALID_CREDENTIAL');
    }
    expect((await revoke({ tokenId: 'xyz' })).statusCode).toBe(400);
    expect((await revoke({})).statusCode).toBe(400);
  });

  it('is for the operator only', async () => {
    const c = await credential();
    expect((await revoke({ tokenId: c.tokenId }, {})).statusCode).toBe(401);
    await f.account('l402-viewer', 0n);
    const created = await app.inject({
      method: 'POST',
      url: '/v1/accounts/l402-viewer/keys',
      headers: op,
      payload: { scopes: ['admin'] },
    });
    const accountKey = (created.json() as { key: string }).key;
    expect((await revoke({ tokenId: c.tokenId }, { authorization: `Bearer ${accountKey}` })).statusCode).toBe(
      403,
    );
  });

  it('persists revocations: a restart loads them, and they are listed a page at a time', async () => {
    const a = await credential();
    const b = await credential();
    for (const c of [a, b]) {
      expect((await get(c.header)).status).toBe(200);
      expect((await revoke({ tokenId: c.tokenId })).statusCode).toBe(200);
    }
    await f.ledger.flush();
    // A new process over the same store: a fresh authority refuses both from the start.
    const reopened = await Ledger.open(f.store);
    const fresh = new L402Authority(SECRET);
    await new L402Revocations(reopened, fresh).load();
    for (const c of [a, b])
      expect(fresh.verify(c.header, 'fixed')).toMatchObject({ ok: false, failure: 'REVOKED' });
    expect(await reopened.getAccount(credentialAccountId(a.tokenId))).toBeDefined();

    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await app.inject({
        method: 'GET',
        url: `/v1/l402/credentials/revoked?limit=2${after ? `&after=${after}` : ''}`,
        headers: op,
      });
      expect(page.statusCode).toBe(200);
      const body = page.json() as { revocations: { tokenId: string }[]; next?: string };
      expect(body.revocations.length).toBeLessThanOrEqual(2);
      seen.push(...body.revocations.map((r) => r.tokenId));
      if (!body.next) break;
      after = body.next;
    }
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining([a.tokenId, b.tokenId]));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('drops a revocation once its credential has expired, from memory and disk', async () => {
    const c = await credential(); // valid for 600 s
    expect((await get(c.header)).status).toBe(200); // paid: its challenge's record gives the expiry
    const clock = { t: Date.now() };
    const auth = new L402Authority(SECRET, () => clock.t);
    const revs = new L402Revocations(f.ledger, auth, {
      now: () => clock.t,
      credentialExpiry: (tokenId) => credentialExpiry(f.service, tokenId),
    });
    const r = await revs.revoke({ credential: c.header });
    expect(r.expiresAt).toBeGreaterThan(clock.t);
    expect(r.expiresAt).toBeLessThanOrEqual(clock.t + 600_000);
    expect(await revs.prune()).toBe(0);
    expect(auth.verify(c.header, 'fixed')).toMatchObject({ ok: false, failure: 'REVOKED' });

    // A restart after the credential expired loads nothing for it, and deletes the record.
    clock.t = r.expiresAt! + 1;
    const restarted = new L402Authority(SECRET, () => clock.t);
    await new L402Revocations(f.ledger, restarted, { now: () => clock.t }).load();
    expect(restarted.revoked.has(c.tokenId)).toBe(false);
    expect(await revs.get(c.tokenId)).toBeUndefined();
    // The running one drops it from memory at its next prune.
    expect(await revs.prune()).toBe(1);
    expect(auth.revoked.has(c.tokenId)).toBe(false);
    expect(auth.verify(c.header, 'fixed')).toMatchObject({ ok: false, failure: 'EXPIRED' });
  });

  it('a revocation by token id lasts as long as the credential (its expiry from its invoice)', async () => {
    const clock = { t: Date.now() };
    const c = await credential(); // valid for 600 s
    expect((await get(c.header)).status).toBe(200); // paid: its invoice is settled
    const auth = new L402Authority(SECRET, () => clock.t);
    const revs = new L402Revocations(f.ledger, auth, {
      now: () => clock.t,
      credentialExpiry: (tokenId) => credentialExpiry(f.service, tokenId),
    });
    const r = await revs.revoke({ tokenId: c.tokenId });
    expect(r.expiresAt).toBeGreaterThan(clock.t);
    expect(r.expiresAt).toBeLessThanOrEqual(clock.t + 600_000);
    expect(auth.revoked.get(c.tokenId)).toBe(r.expiresAt);
    clock.t = r.expiresAt! + 1;
    expect(await revs.prune()).toBe(1);
    expect(await revs.get(c.tokenId)).toBeUndefined();
  });

  it('a revocation by a copy with an earlier valid_until lasts as long as the original credential', async () => {
    const clock = { t: Date.now() };
    const c = await credential(); // minted valid for 600 s
    expect((await get(c.header)).status).toBe(200);
    // The holder attenuates a copy: valid for 10 s only (the signature chain still verifies).
    const mac = decodeV2(Buffer.from(c.macaroon, 'base64'));
    const caveat = `fixed_valid_until=${Math.floor(clock.t / 1000) + 10}`;
    const copy = encodeV2({
      ...mac,
      caveats: [...mac.caveats, caveat],
      signature: createHmac('sha256', mac.signature).update(caveat).digest(),
    }).toString('base64');
    const preimage = c.header.slice(c.header.lastIndexOf(':') + 1);
    const auth = new L402Authority(SECRET, () => clock.t);
    expect(auth.verify(`L402 ${copy}:${preimage}`, 'fixed')).toMatchObject({ ok: true });
    const revs = new L402Revocations(f.ledger, auth, {
      now: () => clock.t,
      credentialExpiry: (tokenId) => credentialExpiry(f.service, tokenId),
    });
    const r = await revs.revoke({ credential: `L402 ${copy}:${preimage}` });
    expect(r.expiresAt).toBeGreaterThan(clock.t + 500_000);
    clock.t += 60_000; // the copy has expired; the original has not
    expect(await revs.prune()).toBe(0);
    expect(auth.verify(c.header, 'fixed')).toMatchObject({ ok: false, failure: 'REVOKED' });
  });

  it('is in the CLI: coulomb l402 revoke and coulomb l402 revoked', async () => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const coulomb = cliAgainst(() => url, OP);
    const byId = await credential();
    const byCredential = await credential();
    expect((await get(byId.header)).status).toBe(200);
    expect(await coulomb('l402', 'revoke', byId.tokenId, '--reason', 'cli')).toMatchObject({
      tokenId: byId.tokenId,
      reason: 'cli',
    });
    expect(await coulomb('l402', 'revoke', byCredential.header)).toMatchObject({
      tokenId: byCredential.tokenId,
    });
    expect((await get(byId.header)).status).toBe(402);
    expect((await get(byCredential.header)).status).toBe(402);
    const listed = (await coulomb('l402', 'revoked', '--limit', '500')) as {
      revocations: { tokenId: string }[];
    };
    expect(listed.revocations.map((r) => r.tokenId)).toEqual(
      expect.arrayContaining([byId.tokenId, byCredential.tokenId]),
    );
  }, 120_000);
});
