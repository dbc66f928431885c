import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { GroupCommit, type CommittedBatch } from '../../../src/ledger/group-commit.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import type { LedgerWrite, StagedBatch } from '../../../src/ledger/store.js';
import { balanceOf, type Account } from '../../../src/ledger/types.js';
import { openDatabase, type Database } from '../../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../../src/storage/level-ledger-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function database(): Promise<{ db: Database; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-staged-'));
  dirs.push(dir);
  return { db: await openDatabase(dir), dir };
}

const record = (key: string): LedgerWrite => ({ type: 'record', key, value: key });
const label = (w: LedgerWrite): string =>
  w.type === 'record'
    ? w.key
    : w.type === 'account'
      ? `account:${w.account.id}:${w.account.creditsPosted}`
      : w.type;
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Staged batches that record what was staged into them, each written when the test says so. */
function recordingBatches() {
  const batches: { staged: string[]; written: boolean; discarded: boolean }[] = [];
  const gates: { finish: () => void; fail: (err: Error) => void }[] = [];
  const stage = (): StagedBatch => {
    const b = { staged: [] as string[], written: false, discarded: false };
    batches.push(b);
    return {
      stage: (w) => void b.staged.push(label(w)),
      get size() {
        return b.staged.length;
      },
      write: () =>
        new Promise<void>((resolve, reject) => {
          gates.push({
            finish: () => {
              b.written = true;
              resolve();
            },
            fail: reject,
          });
        }),
      discard: () => void (b.discarded = true),
    };
  };
  const next = async (): Promise<{ finish: () => void; fail: (err: Error) => void }> => {
    while (gates.length === 0) await tick();
    return gates.shift()!;
  };
  return { batches, stage, next };
}

const account = (id: string, credits: bigint): Account => ({
  id,
  kind: 'agent',
  name: id,
  allowNegative: false,
  frozen: false,
  creditsPosted: credits,
  debitsPosted: 0n,
  creditsPending: 0n,
  debitsPending: 0n,
  createdAt: 0,
});

describe('GroupCommit with staged batches', () => {
  it('stages a write when it is queued, and an account once per batch, as of the batch end', async () => {
    const store = recordingBatches();
    const committed: CommittedBatch[] = [];
    const gc = new GroupCommit(
      store.stage,
      () => {},
      (b) => committed.push(b),
    );
    const a = account('a', 1n);
    const first = gc.add([record('r1'), { type: 'account', account: a }]);
    expect(store.batches[0]!.staged).toEqual(['r1']);
    a.creditsPosted = 5n; // a later operation of the same batch moves the account again
    const second = gc.add([
      record('r2'),
      {
        type: 'transfer',
        transfer: {
          id: 't',
          debitAccountId: 'w',
          creditAccountId: 'a',
          amount: msat(4),
          state: 'posted',
          code: 'x',
          createdAt: 0,
        },
      },
      { type: 'account', account: a },
    ]);
    expect(first).toBe(second); // one promise per batch
    expect(store.batches[0]!.staged).toEqual(['r1', 'r2', 'transfer']);
    (await store.next()).finish();
    await first;
    expect(store.batches).toHaveLength(1);
    expect(store.batches[0]!.staged).toEqual(['r1', 'r2', 'transfer', 'account:a:5']);
    expect(committed).toHaveLength(1);
    expect(committed[0]!.writes).toBe(4);
    expect([...committed[0]!.moved].sort()).toEqual(['a', 'w']);
    expect(committed[0]!.accounts.map((x) => [x.id, x.creditsPosted])).toEqual([['a', 5n]]);
    // the summary holds a copy: later changes of the live account do not reach it
    a.creditsPosted = 9n;
    expect(committed[0]!.accounts[0]!.creditsPosted).toBe(5n);
  });

  it('stages writes queued while a batch is written into the next batch, in order', async () => {
    const store = recordingBatches();
    const gc = new GroupCommit(store.stage, () => {});
    const first = gc.add([record('a1'), record('a2')]);
    const writing = await store.next(); // the first batch is being written
    const settled: string[] = [];
    void first.then(() => settled.push('first'));
    const second = gc.add([record('b1')]);
    void second.then(() => settled.push('second'));
    gc.add([record('b2')]).catch(() => undefined);
    expect(store.batches.map((b) => b.staged)).toEqual([
      ['a1', 'a2'],
      ['b1', 'b2'],
    ]);
    writing.finish();
    await first;
    await tick();
    expect(settled).toEqual(['first']); // the second batch is not durable yet
    (await store.next()).finish();
    await second;
    expect(settled).toEqual(['first', 'second']);
    expect(store.batches.map((b) => b.written)).toEqual([true, true]);
  });

  it('a failed write fails its batch and the one filling meanwhile (discarded), and refuses later writes', async () => {
    const store = recordingBatches();
    const failures: unknown[] = [];
    const gc = new GroupCommit(store.stage, (err) => failures.push(err));
    const first = gc.add([record('a')]);
    const writing = await store.next();
    const second = gc.add([record('b')]);
    writing.fail(new Error('disk full'));
    await expect(first).rejects.toThrow('disk full');
    await expect(second).rejects.toThrow('disk full');
    expect(store.batches[1]!.discarded).toBe(true);
    expect(store.batches[1]!.written).toBe(false);
    await expect(gc.add([record('c')])).rejects.toThrow('disk full');
    expect(store.batches).toHaveLength(2); // nothing staged after the failure
    expect(failures).toHaveLength(1);
    await gc.drain();
  });
});

/** A LevelDB ledger store whose batch writes fail (nothing written) while `failing` is set. */
class FailingLevelStore extends LevelLedgerStore {
  failing = false;

  override stage(): StagedBatch {
    const batch = super.stage();
    return {
      stage: (w) => batch.stage(w),
      get size() {
        return batch.size;
      },
      write: async () => {
        if (!this.failing) return batch.write();
        batch.discard();
        throw new Error('disk full');
      },
      discard: () => batch.discard(),
    };
  }
}

describe('the LevelDB staged batch under the ledger', () => {
  it('a failed batch fails every transfer in it, writes none of them, and a reopen reads the state before it', async () => {
    const { db } = await database();
    const store = new FailingLevelStore(db);
    const ledger = await Ledger.open(store);
    ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    ledger.createAccount({ id: 'b', kind: 'agent', name: 'b' });
    await ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: 'a',
      amount: msat(100),
      code: 'funding',
    }).durable;
    store.failing = true;
    const moves = [
      ledger.transfer({ debitAccountId: 'a', creditAccountId: 'b', amount: msat(10), code: 'x' }),
      ledger.transfer({
        debitAccountId: 'a',
        creditAccountId: 'b',
        amount: msat(20),
        code: 'x',
        pending: true,
      }),
    ];
    ledger.putRecords([{ key: 'side', value: 'v' }]).catch(() => undefined);
    for (const m of moves) await expect(m.durable).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    // memory is ahead of disk: the ledger refuses everything until it is reopened from disk
    expect(() =>
      ledger.transfer({ debitAccountId: 'a', creditAccountId: 'b', amount: msat(1), code: 'x' }),
    ).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED' }));

    const reopened = await Ledger.open(new LevelLedgerStore(db));
    expect(balanceOf((await reopened.requireAccount('a'))!)).toBe(100n);
    expect(balanceOf((await reopened.requireAccount('b'))!)).toBe(0n);
    expect(reopened.pendingTransfers()).toEqual([]);
    expect(await reopened.getTransfer(moves[0]!.value.id)).toBeUndefined();
    expect(await reopened.getRecord('side')).toBeUndefined();
    await reopened.close();
    await db.close();
  });

  it('applies a batch in the order it was staged: a transfer made pending then posted is stored posted', async () => {
    const { db, dir } = await database();
    let ledger = await Ledger.open(new LevelLedgerStore(db));
    ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    const batchesBefore = ledger.batchesWritten;
    const pending = ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: 'a',
      amount: msat(50),
      code: 'funding',
      pending: true,
    });
    const posted = ledger.post(pending.value.id, msat(30));
    void ledger.putRecords([{ key: 'k', value: 'first' }]);
    const last = ledger.putRecords([{ key: 'k', value: 'second' }]);
    await Promise.all([pending.durable, posted.durable, last]);
    expect(ledger.batchesWritten).toBe(batchesBefore + 1); // all of it in one batch
    await ledger.close();
    await db.close();

    const again = await openDatabase(dir);
    ledger = await Ledger.open(new LevelLedgerStore(again));
    expect(ledger.pendingTransfers()).toEqual([]); // the pending index entry was deleted after its put
    expect(await ledger.getTransfer(pending.value.id)).toMatchObject({ state: 'posted', amount: 30n });
    expect(balanceOf((await ledger.requireAccount('a'))!)).toBe(30n);
    expect(await ledger.getRecord('k')).toBe('second');
    const journal = await ledger.journal('a', { limit: 10 });
    expect(journal.map((e) => e.type)).toEqual(['transfer_posted', 'transfer_created', 'account_created']);
    await ledger.close();
    await again.close();
  });

  it('an operation LevelDB refuses while staging (a closed database) fails the batch, not the caller', async () => {
    const { db } = await database();
    const store = new LevelLedgerStore(db);
    await db.close();
    const batch = store.stage();
    expect(() => batch.stage(record('x'))).not.toThrow();
    expect(batch.size).toBe(1);
    await expect(batch.write()).rejects.toThrow();
  });
});
