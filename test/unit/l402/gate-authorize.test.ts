import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { L402Authority } from '../../../src/l402/authority.js';
import { credentialAccountId, L402Gate } from '../../../src/l402/gate.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const SECRET = Buffer.alloc(32, 9);
const SERVICE = { name: 'svc', creditMsat: msat(5000), lifetimeSeconds: 600 };
const hashOf = (macaroon: string): string =>
  decodeV2(Buffer.from(macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');

describe('L402Gate.authorizeNow (the paid path without a wait)', () => {
  it('asks for the wait until the credit is booked, then answers at once, still refusing revoked and expired credentials', async () => {
    const clock = { t: Date.now() };
    const f = await paymentsFixture({ now: () => clock.t });
    const authority = new L402Authority(SECRET, () => clock.t);
    const gate = new L402Gate(authority, f.lightning, f.service);
    const c = await gate.challenge(SERVICE);
    const hash = hashOf(c.macaroon);
    const unpaid = `L402 ${c.macaroon}:${'00'.repeat(32)}`;
    expect(gate.authorizeNow(unpaid, SERVICE.name)).toMatchObject({ ok: false, failure: 'WRONG_PREIMAGE' });

    // Paid over Lightning, but the gateway has not seen the settlement yet: the credit is booked
    // by the preimage's first presentation, which needs a wait.
    f.lightning.settle(hash);
    const header = `L402 ${c.macaroon}:${f.lightning.invoices.get(hash)!.preimage}`;
    expect(gate.authorizeNow(header, SERVICE.name)).toBe('booking');
    const account = credentialAccountId(c.tokenId);
    expect(await gate.authorize(header, SERVICE.name)).toMatchObject({ ok: true, accountId: account });
    await f.ledger.flush();
    expect(balanceOf(await f.ledger.requireAccount(account))).toBe(5000n);

    // Booked: answered synchronously, the same terms as `authorize`, and never booked twice.
    const now = gate.authorizeNow(header, SERVICE.name);
    expect(now).toEqual(await gate.authorize(header, SERVICE.name));
    expect(now).toMatchObject({ ok: true, tokenId: c.tokenId, accountId: account, paymentHash: hash });
    expect(gate.authorizeNow(header, 'other')).toMatchObject({ ok: false, failure: 'WRONG_SERVICE' });
    await f.ledger.flush();
    expect(balanceOf(await f.ledger.requireAccount(account))).toBe(5000n);

    authority.revoked.set(c.tokenId, Infinity);
    expect(gate.authorizeNow(header, SERVICE.name)).toMatchObject({ ok: false, failure: 'REVOKED' });
    authority.revoked.delete(c.tokenId);
    expect(gate.authorizeNow(header, SERVICE.name)).toMatchObject({ ok: true });
    clock.t += 600_000;
    expect(gate.authorizeNow(header, SERVICE.name)).toMatchObject({ ok: false, failure: 'EXPIRED' });
    f.service.stop();
  });
});
