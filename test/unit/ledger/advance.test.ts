import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import { openDatabase } from '../../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../../src/storage/level-ledger-store.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

async function funded(ledger: Ledger): Promise<string> {
  ledger.createAccount({ id: 'world', kind: 'system', name: 'world', allowNegative: true });
  ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
  ledger.createAccount({ id: 'b', kind: 'agent', name: 'b' });
  ledger.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(1000), code: 'funding' });
  const chunk = ledger.transfer({
    debitAccountId: 'a',
    creditAccountId: 'b',
    amount: msat(600),
    code: 'stream',
    pending: true,
  });
  await chunk.durable;
  return chunk.value.id;
}

describe('Ledger.advance (a stream paying out of a reserved chunk)', () => {
  it('moves part of a reservation and keeps the rest reserved', async () => {
    const ledger = await Ledger.open(new MemoryLedgerStore());
    const id = await funded(ledger);
    await ledger.advance(id, msat(100)).durable;
    await ledger.advance(id, msat(150)).durable;
    const a = await ledger.requireAccount('a');
    const b = await ledger.requireAccount('b');
    expect(balanceOf(a)).toBe(750n);
    expect(availableOf(a)).toBe(400n); // 750 posted less the 350 still reserved
    expect(balanceOf(b)).toBe(250n);
    expect(ledger.getTransferSync(id)).toMatchObject({ state: 'pending', advanced: 250n, amount: 600n });
  });

  it('refuses to advance past the reservation, and to post below what already moved', async () => {
    const ledger = await Ledger.open(new MemoryLedgerStore());
    const id = await funded(ledger);
    ledger.advance(id, msat(500));
    expect(() => ledger.advance(id, msat(101))).toThrow(
      expect.objectContaining({ code: 'POST_EXCEEDS_PENDING' }),
    );
    expect(() => ledger.post(id, msat(499))).toThrow(
      expect.objectContaining({ code: 'POST_BELOW_ADVANCED' }),
    );
    expect(() => ledger.advance(id, msat(0))).toThrow(
      expect.objectContaining({ code: 'AMOUNT_MUST_BE_POSITIVE' }),
    );
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(500n);
  });

  it('posting settles at the final amount; voiding keeps what moved and releases the rest', async () => {
    const ledger = await Ledger.open(new MemoryLedgerStore());
    const id = await funded(ledger);
    ledger.advance(id, msat(200));
    const voided = ledger.void(id, 'stopped').value;
    expect(voided).toMatchObject({ state: 'posted', amount: 200n });
    expect(voided.advanced).toBeUndefined();
    const a = await ledger.requireAccount('a');
    expect([balanceOf(a), availableOf(a), a.debitsPending]).toEqual([800n, 800n, 0n]);

    const second = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(300),
      code: 'stream',
      pending: true,
    }).value.id;
    ledger.advance(second, msat(50));
    expect(ledger.post(second, msat(120)).value).toMatchObject({ state: 'posted', amount: 120n });
    expect(balanceOf(await ledger.requireAccount('a'))).toBe(680n);
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(320n);
    expect((await ledger.requireAccount('b')).creditsPending).toBe(0n);
  });

  it('an advanced reservation survives a reopen from LevelDB', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coulomb-advance-'));
    let db = await openDatabase(dir);
    let ledger = await Ledger.open(new LevelLedgerStore(db));
    const id = await funded(ledger);
    await ledger.advance(id, msat(42)).durable;
    await ledger.close();
    await db.close();
    db = await openDatabase(dir);
    ledger = await Ledger.open(new LevelLedgerStore(db));
    expect(ledger.getTransferSync(id)).toMatchObject({ state: 'pending', advanced: 42n });
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(42n);
    ledger.void(id);
    expect(availableOf(await ledger.requireAccount('a'))).toBe(958n);
    await ledger.close();
    await db.close();
  });
});
