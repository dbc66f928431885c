import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeys } from '../../src/auth/api-keys.js';
import { envOverrides, loadConfig } from '../../src/config/load.js';
import { msat } from '../../src/domain/msat.js';
import { SHARED_REVOCATION_BOUND_MS } from '../../src/domain/shared-staleness.js';
import { L402Authority } from '../../src/l402/authority.js';
import { credentialAccountId, L402Gate } from '../../src/l402/gate.js';
import { decodeV2 } from '../../src/l402/macaroon.js';
import { closeL402Credential, CreditRefunds } from '../../src/l402/refund.js';
import { L402Revocations } from '../../src/l402/revocations.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { createLogger } from '../../src/logger.js';
import { l402Gate, openAccounts } from '../../src/main.js';
import { EventBus } from '../../src/payments/events.js';
import { PaymentsService } from '../../src/payments/service.js';
import { AuditLog } from '../../src/policy/audit.js';
import { PolicyRegistry } from '../../src/policy/registry.js';
import { PostgresLedgerStore } from '../../src/storage/postgres/postgres-ledger-store.js';
import { FakeLightning } from '../support/fake-lightning.js';
import { silentLog } from '../support/payments-fixture.js';
import { createTestDatabase } from '../support/postgres.js';
import { eventually } from '../support/regtest.js';

/**
 * Revocations made through one instance of a deployment honoured by the others within
 * SHARED_REVOCATION_BOUND_MS: API keys, L402 credentials revoked by the operator or closed (and
 * refunded) by their holder. First with an injected clock (no waiting), then through the
 * composition root (`openAccounts`, the proxy's `l402Gate`) with the real one.
 */

const SERVICE = { name: 'svc', creditMsat: msat(5000), lifetimeSeconds: 600 };
const SECRET = Buffer.alloc(32, 7);
const hashOf = (macaroon: string): string =>
  decodeV2(Buffer.from(macaroon, 'base64')).identifier.subarray(2, 34).toString('hex');

describe('revocations across instances, with an injected clock', () => {
  const ledgers: Ledger[] = [];
  const services: PaymentsService[] = [];
  let url: string;
  const clock = { t: Date.now() };
  const now = (): number => clock.t;

  beforeAll(async () => {
    url = await createTestDatabase(inject('postgresUrl'), 'revocations_clock');
  });
  afterAll(async () => {
    for (const s of services) s.stop();
    await Promise.all(ledgers.map((l) => l.close()));
  });

  const open = async (): Promise<Ledger> => {
    const ledger = await Ledger.open(await PostgresLedgerStore.open(url, { max: 2 }), { now });
    ledgers.push(ledger);
    return ledger;
  };
  /** An instance's ledger and payments service (which books a credential's credit). */
  const withPayments = async (lnd: FakeLightning): Promise<{ ledger: Ledger; payments: PaymentsService }> => {
    const ledger = await open();
    const policies = new PolicyRegistry(ledger);
    const payments = new PaymentsService(
      ledger,
      lnd,
      policies,
      new AuditLog(ledger),
      new EventBus(),
      silentLog,
      {
        reconcileIntervalMs: 3600_000,
        now,
      },
    );
    await payments.start();
    services.push(payments);
    return { ledger, payments };
  };

  it('refuses on one instance, within the bound, an API key revoked through another', async () => {
    const [a, b] = [await open(), await open()];
    expect(a.shared && b.shared).toBe(true);
    const bound = { maxAgeMs: SHARED_REVOCATION_BOUND_MS };
    const [keysA, keysB] = [new ApiKeys(a, now, undefined, bound), new ApiKeys(b, now, undefined, bound)];
    const { key, record } = await keysA.create({ type: 'operator' }, 'alice', ['pay']);
    expect((await keysA.verify(key))?.id).toBe(record.id);
    expect((await keysB.verify(key))?.id).toBe(record.id);

    const revoked = await keysB.revoke('alice', record.id);
    expect(await keysB.verify(key)).toBeUndefined();
    clock.t += SHARED_REVOCATION_BOUND_MS;
    expect(await keysA.verify(key)).toBeUndefined();
    // Revoking again through the first instance keeps the first revocation's time.
    expect((await keysA.revoke('alice', record.id)).revokedAt).toBe(revoked.revokedAt);
    expect((await keysA.list('alice')).map((k) => k.revokedAt)).toEqual([revoked.revokedAt]);
  });

  it('refuses on one instance, within the bound, an L402 credential revoked through another', async () => {
    const lnd = new FakeLightning();
    const [a, b] = [await withPayments(lnd), await withPayments(lnd)];
    const options = { now, maxAgeMs: SHARED_REVOCATION_BOUND_MS };
    const authorityA = new L402Authority(SECRET, now);
    const revocationsA = new L402Revocations(a.ledger, authorityA, options);
    const revocationsB = new L402Revocations(b.ledger, new L402Authority(SECRET, now), options);
    await Promise.all([revocationsA.load(), revocationsB.load()]);
    const gateA = new L402Gate(authorityA, lnd, a.payments, revocationsA);
    const c = await gateA.challenge(SERVICE);
    lnd.settle(hashOf(c.macaroon));
    const header = `L402 ${c.macaroon}:${lnd.invoices.get(hashOf(c.macaroon))!.preimage}`;
    expect(await gateA.authorize(header, SERVICE.name)).toMatchObject({ ok: true, tokenId: c.tokenId });
    // Booked, its revocation read just now: admitted without a wait.
    expect(gateA.authorizeNow(header, SERVICE.name)).toMatchObject({ ok: true });

    await revocationsB.revoke({ tokenId: c.tokenId }, 'abuse');
    clock.t += SHARED_REVOCATION_BOUND_MS;
    expect(gateA.authorizeNow(header, SERVICE.name)).toBe('booking'); // read again first
    expect(await gateA.authorize(header, SERVICE.name)).toMatchObject({ ok: false, failure: 'REVOKED' });
    expect(gateA.authorizeNow(header, SERVICE.name)).toMatchObject({ ok: false, failure: 'REVOKED' });
  });
});

describe('revocations across two gateway instances (openAccounts) on one PostgreSQL database', () => {
  type Accounts = Awaited<ReturnType<typeof openAccounts>>;
  const instances: { accounts: Accounts; lnd: FakeLightning }[] = [];
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-revoke-'));
    const url = await createTestDatabase(inject('postgresUrl'), 'revocations_across');
    // One after another: the first applies the migrations. One data dir: one L402 secret.
    for (let i = 0; i < 2; i++) {
      const config = loadConfig({
        env: envOverrides({ COULOMB_DATABASE_URL: url, COULOMB_DATA_DIR: dataDir }),
      });
      const lnd = new FakeLightning();
      const accounts = await openAccounts(config, lnd, createLogger('silent'), { leaderPollMs: 200 });
      instances.push({ accounts, lnd });
    }
  });
  afterAll(async () => {
    for (const i of instances) await i.accounts.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const services = (i: number) => instances[i]!.accounts.services;
  const gateOf = (i: number): L402Gate => {
    const s = services(i);
    return l402Gate(s, instances[i]!.lnd, s.l402!.authority, s.l402!.revocations);
  };
  /** A paid credential, bought and used through instance 0. */
  const credential = async (): Promise<{ header: string; tokenId: string }> => {
    const gate = gateOf(0);
    const c = await gate.challenge(SERVICE);
    const lnd = instances[0]!.lnd;
    lnd.settle(hashOf(c.macaroon));
    const header = `L402 ${c.macaroon}:${lnd.invoices.get(hashOf(c.macaroon))!.preimage}`;
    expect(await gate.authorize(header, SERVICE.name)).toMatchObject({ ok: true, tokenId: c.tokenId });
    return { header, tokenId: c.tokenId };
  };
  /** A gateway account refunds go to, made through instance `i` unless it exists. */
  const refundAccount = async (i: number): Promise<string> => {
    const ledger = services(i).ledger;
    await ledger.ensure({ accounts: ['refunds'] });
    if (!ledger.accountNow('refunds'))
      await ledger.createAccount({ id: 'refunds', kind: 'agent', name: 'refunds' }).durable;
    return 'refunds';
  };
  const refusedBy = (gate: L402Gate, header: string) =>
    eventually(async () => {
      const auth = await gate.authorize(header, SERVICE.name);
      return auth.ok ? undefined : auth;
    }, 30_000);

  it('refuses on the first instance an API key revoked through the second', async () => {
    const { key, record } = await services(0).apiKeys.create({ type: 'operator' }, 'alice', ['read']);
    expect((await services(0).apiKeys.verify(key))?.id).toBe(record.id);
    expect((await services(1).apiKeys.verify(key))?.id).toBe(record.id);
    await services(1).apiKeys.revoke('alice', record.id);
    await eventually(async () => ((await services(0).apiKeys.verify(key)) === undefined ? true : undefined));
  });

  it('refuses on the first instance an L402 credential the operator revoked through the second', async () => {
    const { header, tokenId } = await credential();
    await services(1).l402!.revocations.revoke({ tokenId }, 'abuse');
    expect(await refusedBy(gateOf(0), header)).toMatchObject({ ok: false, failure: 'REVOKED' });
  });

  it('refuses on the first instance a credential its holder closed (and was refunded) through the second', async () => {
    const { header, tokenId } = await credential();
    const s = services(1);
    const accountId = await refundAccount(1);
    const refunds = new CreditRefunds(s.ledger, s.payments, s.policies, instances[1]!.lnd);
    const closed = await closeL402Credential(
      { authority: s.l402!.authority, revocations: s.l402!.revocations, refunds },
      header,
      SERVICE.name,
      { kind: 'account', accountId },
    );
    expect(closed).toMatchObject({ accountId: credentialAccountId(tokenId), refundMsat: 5000n });
    expect(await refusedBy(gateOf(0), header)).toMatchObject({ ok: false, failure: 'REVOKED' });
  });

  it('refunds no credential the operator revoked through another instance, however recent', async () => {
    const { header, tokenId } = await credential();
    await services(1).l402!.revocations.revoke({ tokenId }, 'abuse');
    // At once, through the first instance (whose memory has not read the revocation yet).
    const s = services(0);
    const accountId = await refundAccount(0);
    const refunds = new CreditRefunds(s.ledger, s.payments, s.policies, instances[0]!.lnd);
    await expect(
      closeL402Credential(
        { authority: s.l402!.authority, revocations: s.l402!.revocations, refunds },
        header,
        SERVICE.name,
        { kind: 'account', accountId },
      ),
    ).rejects.toMatchObject({ code: 'CREDENTIAL_REVOKED' });
    expect(await refunds.closed(credentialAccountId(tokenId))).toBeUndefined();
  });
});
