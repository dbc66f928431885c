import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { L402Authority } from '../../../src/l402/authority.js';
import { credentialAccountId, L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const SECRET = Buffer.alloc(32, 7);
const SERVICE = { name: 'svc', creditMsat: msat(5000), lifetimeSeconds: 600 };
const hashOf = (macaroon: string): string =>
  decodeV2(Buffer.from(macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');

describe('L402 challenges cost nothing until paid', () => {
  it('keeps no challenge in memory, prunes expired ones from disk, and credits a paid one once after a restart', async () => {
    const clock = { t: Date.now() };
    const now = (): number => clock.t;
    const options = { now, invoices: { cachedRecords: 100, cachedSettled: 100, pruneGraceMs: 60_000 } };
    const f = await paymentsFixture(options);
    const gate = new L402Gate(new L402Authority(SECRET, now), f.lightning, f.service);

    const N = 20_000;
    const challenges: { macaroon: string; tokenId: string }[] = [];
    for (let i = 0; i < N; i += 1000)
      challenges.push(...(await Promise.all(Array.from({ length: 1000 }, () => gate.challenge(SERVICE)))));
    expect(f.service.invoiceStats()).toEqual({ cachedRecords: 0, cachedSettled: 0 });
    const onDisk = (prefix: string): number =>
      [...f.store.records.keys()].filter((k) => k.startsWith(prefix)).length;
    expect(onDisk('inv!')).toBe(N);
    // What crediting needs, and no more: no preimage, no request.
    const paid = challenges[12_345]!;
    const hash = hashOf(paid.macaroon);
    const stored = JSON.parse(f.store.records.get(`inv!${hash}`)!) as Record<string, unknown>;
    expect(stored).toMatchObject({ accountId: credentialAccountId(paid.tokenId), amountMsat: '5000' });
    expect(stored).not.toHaveProperty('preimage');
    expect(stored['request']).toBe('');
    f.service.stop();

    // A restart: nothing of the challenges is loaded. One of them is paid over Lightning now.
    const g = await paymentsFixture(options, f.store, f.lightning);
    expect(g.service.invoiceStats()).toEqual({ cachedRecords: 0, cachedSettled: 0 });
    const settled = f.lightning.settle(hash);
    await g.service.onInvoice(settled);
    await g.service.onInvoice(settled); // the subscription's catch-up delivers it again
    const account = credentialAccountId(paid.tokenId);
    expect(balanceOf(await g.ledger.requireAccount(account))).toBe(5000n);
    const gate2 = new L402Gate(new L402Authority(SECRET, now), g.lightning, g.service);
    const header = `L402 ${paid.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
    expect(await gate2.authorize(header, SERVICE.name)).toMatchObject({ ok: true, accountId: account });
    await g.ledger.flush();
    g.service.stop();

    // Past every expiry (and the grace): the sweep deletes the unpaid challenges in bounded passes.
    clock.t += 2 * 3600_000;
    const h = await paymentsFixture(options, f.store, f.lightning);
    let removed = 0;
    for (let pass = 0; pass < 20; pass++) {
      const n = await h.service.pruneExpiredInvoices(5000);
      expect(n).toBeLessThanOrEqual(5000);
      removed += n;
      if (n === 0) break;
    }
    expect(removed).toBe(N - 1);
    expect(onDisk('inv!')).toBe(1);
    expect(onDisk('invexp!')).toBe(0);
    // The paid one still admits its credential from disk, and is never credited again.
    const gate3 = new L402Gate(new L402Authority(SECRET, now), h.lightning, h.service);
    expect(await gate3.authorize(header, SERVICE.name)).toMatchObject({ ok: false, failure: 'EXPIRED' });
    expect(await h.service.creditProvenPayment(hash)).toBe(true);
    await h.service.onInvoice(settled);
    await h.ledger.flush();
    expect(balanceOf(await h.ledger.requireAccount(account))).toBe(5000n);
    expect(h.service.invoiceStats().cachedRecords).toBeLessThanOrEqual(100);
    h.service.stop();
  }, 120_000);

  it('a gateway account pays a challenge internally and gets its preimage from LND (the record keeps none)', async () => {
    const f = await paymentsFixture();
    await f.account('agent', 100_000n);
    const gate = new L402Gate(new L402Authority(SECRET), f.lightning, f.service);
    const c = await gate.challenge(SERVICE);
    const hash = hashOf(c.macaroon);
    const p = await f.service.pay('agent', { request: c.invoice });
    expect(p).toMatchObject({ kind: 'internal', status: 'succeeded' });
    expect(p.preimage).toBe(f.lightning.invoices.get(hash)!.preimage);
    const auth = await gate.authorize(`L402 ${c.macaroon}:${p.preimage!}`, SERVICE.name);
    expect(auth).toMatchObject({ ok: true, accountId: credentialAccountId(c.tokenId) });
    expect(balanceOf(await f.ledger.requireAccount(credentialAccountId(c.tokenId)))).toBe(5000n);
    await expect(f.service.pay('agent', { request: c.invoice })).rejects.toMatchObject({
      code: 'ALREADY_PAID',
    });
    f.service.stop();
  });
});
