import { describe, expect, it } from 'vitest';
import { L402Authority } from '../../../src/l402/authority.js';
import { L402Revocations } from '../../../src/l402/revocations.js';
import { MemoryRecords } from '../../support/memory-records.js';

/** Side records plus the credential accounts a revocation by token id looks for. */
class Records extends MemoryRecords {
  readonly accounts = new Set<string>();
  getAccount(id: string): Promise<unknown> {
    return Promise.resolve(this.accounts.has(id) ? { id } : undefined);
  }
}

const SECRET = Buffer.alloc(32, 5);
const token = (n: number): string => n.toString(16).padStart(64, '0');

/** Two instances' revocations over one store, on an injected clock. */
function twoInstances(maxAgeMs: number | undefined) {
  const store = new Records();
  const clock = { t: 1_000_000 };
  const now = (): number => clock.t;
  const make = () => {
    const authority = new L402Authority(SECRET, now);
    const revocations = new L402Revocations(store, authority, {
      now,
      ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
      credentialExpiry: () => Promise.resolve(clock.t + 10_000),
    });
    return { authority, revocations };
  };
  return { store, clock, a: make(), b: make() };
}

describe('L402Revocations on a store shared by several instances', () => {
  it('one process owning its store: every token id is current, nothing is read', async () => {
    const { store, a } = twoInstances(undefined);
    expect(a.revocations.current(token(1))).toBe(true);
    expect(store.reads).toBe(0);
  });

  it('a token id is current for maxAgeMs after its record was read; concurrent reads are one', async () => {
    const { store, clock, a, b } = twoInstances(1000);
    store.accounts.add(`l402:${token(1)}`);
    expect(a.revocations.current(token(1))).toBe(false);
    await Promise.all([a.revocations.refresh(token(1)), a.revocations.refresh(token(1))]);
    expect(store.reads).toBe(1);
    expect(a.revocations.current(token(1))).toBe(true);
    expect(a.revocations.has(token(1))).toBe(false);

    await b.revocations.revoke({ tokenId: token(1) }, 'abuse');
    clock.t += 1000;
    expect(a.revocations.current(token(1))).toBe(false);
    await a.revocations.refresh(token(1));
    expect(a.revocations.has(token(1))).toBe(true);
    // A revocation is never undone: a revoked token id stays current without reads.
    clock.t += 5000;
    expect(a.revocations.current(token(1))).toBe(true);
  });

  it("prunes from disk the expired revocations other instances wrote, and forgets them in every instance's memory", async () => {
    const { store, clock, a, b } = twoInstances(1000);
    store.accounts.add(`l402:${token(2)}`);
    store.accounts.add(`l402:${token(3)}`);
    await b.revocations.revoke({ tokenId: token(2) });
    await a.revocations.refresh(token(2));
    expect(a.authority.revoked.has(token(2))).toBe(true);
    clock.t += 20_000; // the credential (expiry: 10 s after its revocation) has expired
    await b.revocations.revoke({ tokenId: token(3) });
    // The leader (a) never read token 3's revocation, nor wrote token 2's: both records are swept.
    expect(await a.revocations.prune()).toBe(1);
    expect(await a.revocations.get(token(2))).toBeUndefined();
    expect(await a.revocations.get(token(3))).toBeDefined();
    expect(a.authority.revoked.has(token(2))).toBe(false);

    // The other instance forgets it too, at its next read past the forget period.
    expect(b.authority.revoked.has(token(2))).toBe(true);
    clock.t += 60_000;
    await b.revocations.refresh(token(4));
    expect(b.authority.revoked.has(token(2))).toBe(false);
    // An expired revocation read from disk is not taken into memory.
    await store.putRecords([
      { key: `l402rev!${token(5)}`, value: JSON.stringify({ revokedAt: 1, expiresAt: clock.t - 1 }) },
    ]);
    await b.revocations.refresh(token(5));
    expect(b.authority.revoked.has(token(5))).toBe(false);
  });
});
