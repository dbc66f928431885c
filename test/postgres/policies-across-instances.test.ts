import { describe, expect, inject, it } from 'vitest';
import { msat } from '../../src/domain/msat.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { PolicyRegistry } from '../../src/policy/registry.js';
import { PostgresLedgerStore } from '../../src/storage/postgres/postgres-ledger-store.js';
import { createTestDatabase } from '../support/postgres.js';

/** An instance's ledger and policies, wired as the composition root wires them. */
async function instance(url: string): Promise<{ ledger: Ledger; policies: PolicyRegistry }> {
  const ledger = await Ledger.open(await PostgresLedgerStore.open(url, { max: 2 }));
  const policies = new PolicyRegistry(ledger);
  ledger.on('leased', (ids) => policies.forget(ids));
  return { ledger, policies };
}

describe('policies on several instances of one PostgreSQL database', () => {
  it('a policy changed on one instance is what another evaluates once it takes the account again', async () => {
    const url = await createTestDatabase(inject('postgresUrl'), 'policies_multi');
    const [one, two] = [await instance(url), await instance(url)];
    await one.ledger.ensure({ accounts: ['sys', 'alice', 'bob'] });
    one.ledger.createAccount({ id: 'sys', kind: 'system', name: 'sys', allowNegative: true });
    one.ledger.createAccount({ id: 'alice', kind: 'agent', name: 'alice' });
    one.ledger.createAccount({ id: 'bob', kind: 'agent', name: 'bob' });
    await one.ledger.transfer({
      debitAccountId: 'sys',
      creditAccountId: 'alice',
      amount: msat(100n),
      code: 'funding',
    }).durable;
    await one.policies.set('alice', { rules: [] });

    // One spends from alice: her lease and her (empty) policy are in its memory.
    await one.ledger.ensure({ spend: ['alice'], accounts: ['bob'] });
    await one.policies.ensure('alice');
    expect(one.policies.get('alice')).toEqual({ rules: [] });
    await one.ledger.transfer({
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(1n),
      code: 'transfer',
    }).durable;

    // The operator changes alice's policy through the other instance, under her lease.
    await two.ledger.ensure({ spend: ['alice'] });
    await two.policies.set('alice', { tier: 'L1', rules: [] });

    // Back on the first instance, the next spend evaluates the new policy.
    await one.ledger.ensure({ spend: ['alice'], accounts: ['bob'] });
    await one.policies.ensure('alice');
    expect(one.policies.get('alice')).toEqual({ tier: 'L1', rules: [] });
    await Promise.all([one.ledger.close(), two.ledger.close()]);
  });
});
