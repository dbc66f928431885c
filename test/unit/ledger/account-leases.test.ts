import { describe, expect, it } from 'vitest';
import { AccountLeases } from '../../../src/ledger/account-leases.js';
import type { AccountLeaseStore, LeaseGrant } from '../../../src/ledger/store.js';

/** Leases as the database keeps them, shared by the holders made from it (a unit-test stand-in). */
class LeaseTable {
  rows = new Map<string, { holder: string; epoch: number; expiresAt: number; wanted: boolean }>();
  private epochs = 0;
  now = (): number => Date.now();

  holder(name: string): AccountLeaseStore & { acquired: number } {
    const rows = this.rows;
    const now = (): number => this.now();
    const nextEpoch = (): number => ++this.epochs;
    return {
      holder: name,
      acquired: 0,
      async acquireLeases(ids: readonly string[], ttlMs: number) {
        this.acquired += 1;
        const granted: LeaseGrant[] = [];
        const refused: string[] = [];
        for (const id of ids) {
          const r = rows.get(id);
          if (!r || r.expiresAt < now() || r.holder === name) {
            const mine = r?.holder === name;
            const row = {
              holder: name,
              epoch: mine ? r!.epoch : nextEpoch(),
              expiresAt: now() + ttlMs,
              wanted: mine ? r!.wanted : false,
            };
            rows.set(id, row);
            granted.push({ accountId: id, epoch: row.epoch, wanted: row.wanted });
          } else {
            r.wanted = true;
            refused.push(id);
          }
        }
        return { granted, refused };
      },
      async wantedLeases() {
        return [...rows].filter(([, r]) => r.holder === name && r.wanted).map(([id]) => id);
      },
      async releaseLeases(leases: readonly { accountId: string; epoch: number }[]) {
        for (const l of leases) {
          const r = rows.get(l.accountId);
          if (r && r.holder === name && r.epoch === l.epoch) rows.delete(l.accountId);
        }
      },
      async pendingDebits() {
        return [];
      },
    };
  }
}

function leases(
  store: AccountLeaseStore,
  hooks: { refreshed?: string[][]; dirty?: Set<string>; released?: string[][] } = {},
  options: ConstructorParameters<typeof AccountLeases>[2] = {},
): AccountLeases {
  return new AccountLeases(
    store,
    {
      refresh: async (ids) => {
        hooks.refreshed?.push(ids);
      },
      dirty: (id) => hooks.dirty?.has(id) ?? false,
      released: (ids) => {
        if (ids.length > 0) hooks.released?.push(ids);
      },
    },
    { tickMs: 5, graceMs: 5, idleMs: 1000, waitMs: 2000, ...options },
  );
}

describe('AccountLeases', () => {
  it('takes a lease once, reads the account afresh once, and fences debits with its epoch', async () => {
    const table = new LeaseTable();
    const store = table.holder('a');
    const refreshed: string[][] = [];
    const a = leases(store, { refreshed });
    expect(a.epochOf('alice')).toBeUndefined();
    await Promise.all([a.hold(['alice']), a.hold(['alice'])]);
    await a.hold(['alice']);
    expect(refreshed).toEqual([['alice']]);
    expect(a.epochOf('alice')).toBe(table.rows.get('alice')!.epoch);
    // Held and fresh: no round trip.
    const before = store.acquired;
    await a.hold(['alice']);
    expect(store.acquired).toBe(before);
    await a.stop();
    expect(table.rows.size).toBe(0);
  });

  it('hands a lease over to the instance that asks, not before its changes are durable', async () => {
    const table = new LeaseTable();
    const dirty = new Set(['alice']);
    const released: string[][] = [];
    const a = leases(table.holder('a'), { dirty, released });
    const b = leases(table.holder('b'));
    await a.hold(['alice']);
    const first = a.epochOf('alice')!;
    let got = false;
    const taking = b.hold(['alice']).then(() => (got = true));
    await new Promise((r) => setTimeout(r, 60));
    // a has a change of alice not yet durable: it keeps the lease.
    expect(got).toBe(false);
    expect(a.epochOf('alice')).toBe(first);
    expect(released).toEqual([]);
    dirty.delete('alice');
    await taking;
    expect(a.epochOf('alice')).toBeUndefined();
    // The ledger forgets what only the holder may change (its pending debits of alice).
    expect(released).toEqual([['alice']]);
    expect(b.epochOf('alice')).toBeGreaterThan(first);
    await Promise.all([a.stop(), b.stop()]);
  });

  it('refuses with LEASE_BUSY when the holder never hands over within the wait', async () => {
    const table = new LeaseTable();
    const a = leases(table.holder('a'), { dirty: new Set(['alice']) });
    const b = leases(table.holder('b'), {}, { waitMs: 50 });
    await a.hold(['alice']);
    await expect(b.hold(['alice'])).rejects.toMatchObject({ code: 'LEASE_BUSY', status: 503 });
    await Promise.all([a.stop(), b.stop()]);
  });

  it('takes over a lease that ran out (its holder died) with a new epoch', async () => {
    const table = new LeaseTable();
    const dead = leases(table.holder('a'), {}, { ttlMs: 40 });
    await dead.hold(['alice']);
    const old = table.rows.get('alice')!.epoch;
    // The holder's process is gone: nothing renews its lease.
    await dead.stop().catch(() => undefined);
    table.rows.set('alice', { holder: 'a', epoch: old, expiresAt: table.now() + 40, wanted: false });
    const b = leases(table.holder('b'));
    await b.hold(['alice']);
    expect(b.epochOf('alice')).not.toBe(old);
    await b.stop();
  });

  it('drops a lease the renewal finds lost: debits of it are refused', async () => {
    const table = new LeaseTable();
    const released: string[][] = [];
    const a = leases(table.holder('a'), { released }, { ttlMs: 30 });
    await a.hold(['alice']);
    expect(a.epochOf('alice')).toBeDefined();
    // Another instance took it (a's lease ran out while a was stalled).
    table.rows.set('alice', { holder: 'b', epoch: 99, expiresAt: table.now() + 60_000, wanted: false });
    await new Promise((r) => setTimeout(r, 60));
    expect(a.epochOf('alice')).toBeUndefined();
    expect(a.holds('alice')).toBe(false);
    expect(released).toEqual([['alice']]);
    await a.stop();
  });
});
