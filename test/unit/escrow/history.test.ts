import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { escrowKey } from '../../../src/escrow/codec.js';
import type { Escrow } from '../../../src/escrow/types.js';
import { escrowFixture } from './fixture.js';

const payer = { type: 'account', accountId: 'payer' } as const;

type Fixture = Awaited<ReturnType<typeof escrowFixture>>;

/** `n` account escrows from payer to payee, one millisecond apart; every `closeEvery`-th approved. */
async function make(f: Fixture, n: number, closeEvery: number): Promise<Escrow[]> {
  const out: Escrow[] = [];
  for (let i = 0; i < n; i++) {
    f.advance(1);
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(10),
      condition: { type: 'approval' },
      funding: 'account',
      description: `#${i}`,
    });
    out.push(i % closeEvery === 0 ? await f.escrow.approve(e.id, payer) : e);
  }
  return out;
}

describe('escrow history', () => {
  it('pages an account’s escrows newest first, as payer and as payee, and all of them for the operator', async () => {
    const f = await escrowFixture();
    const made = await make(f, 25, 3);
    const seen: string[] = [];
    let before: string | undefined;
    for (;;) {
      const page = await f.escrow.list('payee', { limit: 10, ...(before ? { before } : {}) });
      seen.push(...page.escrows.map((e) => e.description));
      if (!page.next) break;
      before = page.next;
    }
    expect(seen).toEqual(made.map((e) => e.description).reverse());
    expect((await f.escrow.list('payer', { limit: 1000 })).escrows).toHaveLength(25);
    expect((await f.escrow.list(undefined, { limit: 5 })).escrows.map((e) => e.description)).toEqual([
      '#24',
      '#23',
      '#22',
      '#21',
      '#20',
    ]);
    expect((await f.escrow.list('other')).escrows).toEqual([]);
    // A listed escrow never carries the preimage the gateway holds.
    expect((await f.escrow.list('payer')).escrows.every((e) => e.preimage === undefined)).toBe(true);
  });

  it('after a restart loads only open escrows; closed ones are read from disk when asked for', async () => {
    const f = await escrowFixture();
    const made = await make(f, 30, 2); // 15 released, 15 still funded
    const again = await f.restart(f.escrow);
    expect(again.stats()).toEqual({ open: 15, closedInMemory: 0 });
    expect(await again.get(made[0]!.id)).toMatchObject({ state: 'released', description: '#0' });
    expect(again.stats()).toEqual({ open: 15, closedInMemory: 1 });
    // An open one still works, and closing it moves it out of the open set.
    expect((await again.approve(made[1]!.id, payer)).state).toBe('released');
    expect(again.stats()).toEqual({ open: 14, closedInMemory: 2 });
    // Approving a closed escrow read back from disk is harmless, as before.
    expect((await again.approve(made[2]!.id, payer)).state).toBe('released');
    expect((await again.list('payer', { limit: 1000 })).escrows).toHaveLength(30);
    await expect(again.get('00000000-0000-0000-0000-000000000000')).rejects.toMatchObject({
      code: 'ESCROW_NOT_FOUND',
    });
    again.stop();
  });

  it('keeps a bounded number of closed escrows in memory', async () => {
    const f = await escrowFixture();
    const made = await make(f, 1010, 1); // all released
    expect(f.escrow.stats()).toEqual({ open: 0, closedInMemory: 1000 });
    expect(await f.escrow.get(made[0]!.id)).toMatchObject({ state: 'released', description: '#0' });
    f.escrow.stop();
  });

  it('indexes the escrows of a store written before the indexes existed', async () => {
    const f = await escrowFixture();
    const made = await make(f, 6, 2);
    // What an older version left: the escrow records only, no index entries, no mark.
    const keep = await Promise.all(made.map(async (e) => (await f.ledger.getRecord(escrowKey(e.id)))!));
    const all = await f.ledger.listRecords('escrow');
    await f.ledger.putRecords(all.map((r) => ({ key: r.key, value: null })));
    await f.ledger.putRecords(made.map((e, i) => ({ key: escrowKey(e.id), value: keep[i]! })));
    const again = await f.restart(f.escrow);
    expect(again.stats().open).toBe(3);
    expect((await again.list('payee')).escrows.map((e) => e.description)).toEqual([
      '#5',
      '#4',
      '#3',
      '#2',
      '#1',
      '#0',
    ]);
    again.stop();
  });
});
