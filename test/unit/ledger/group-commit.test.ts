import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../../src/ledger/group-commit.js';
import { CollectedBatch, type LedgerWrite, type StagedBatch } from '../../../src/ledger/store.js';

const record = (key: string): LedgerWrite => ({ type: 'record', key, value: key });

/** Batches that hand their writes to `commit` when written (a store without `stage`). */
const collected =
  (commit: (writes: LedgerWrite[]) => Promise<void>): (() => StagedBatch) =>
  () =>
    new CollectedBatch(commit);

/** A store whose writes finish only when the test says so. */
function gatedStore() {
  const batches: string[][] = [];
  const open: (() => void)[] = [];
  const write = (writes: LedgerWrite[]): Promise<void> => {
    batches.push(writes.map((w) => (w.type === 'record' ? w.key : w.type)));
    return new Promise((resolve) => open.push(resolve));
  };
  const finishNext = async (): Promise<void> => {
    while (open.length === 0) await new Promise((r) => setImmediate(r));
    open.shift()!();
  };
  return { batches, write, finishNext };
}

describe('GroupCommit preparers', () => {
  it('runs a preparer at the start of a wanted batch, and what it adds is in that batch', async () => {
    const store = gatedStore();
    const gc = new GroupCommit(collected(store.write), () => {});
    let pending = 0;
    let durable: Promise<void> | undefined;
    gc.beforeBatch(() => {
      if (pending === 0) return;
      durable = gc.add([record(`sum:${pending}`)]);
      pending = 0;
    });
    pending = 3;
    gc.want();
    const other = gc.add([record('other')]);
    await store.finishNext();
    await Promise.all([durable, other]);
    expect(store.batches).toEqual([['other', 'sum:3']]);
  });

  it('starts the next batch for a want made while a batch is being written, without writes of its own', async () => {
    const store = gatedStore();
    const gc = new GroupCommit(collected(store.write), () => {});
    let pending = 0;
    const sums: Promise<void>[] = [];
    gc.beforeBatch(() => {
      if (pending === 0) return;
      sums.push(gc.add([record(`sum:${pending}`)]));
      pending = 0;
    });
    const first = gc.add([record('first')]);
    await new Promise((r) => setImmediate(r)); // the first batch is now being written
    expect(store.batches).toEqual([['first']]);
    pending = 2;
    gc.want();
    pending += 5; // aggregated while the write goes on
    gc.want();
    await store.finishNext();
    await first;
    await store.finishNext();
    await Promise.all(sums);
    expect(store.batches).toEqual([['first'], ['sum:7']]);
    await gc.drain();
  });

  it('stops calling a removed preparer, and a throwing one does not stop the writes', async () => {
    const store = gatedStore();
    const gc = new GroupCommit(collected(store.write), () => {});
    let calls = 0;
    const remove = gc.beforeBatch(() => (calls += 1));
    gc.beforeBatch(() => {
      throw new Error('broken preparer');
    });
    gc.want();
    const a = gc.add([record('a')]);
    await store.finishNext();
    await a;
    remove();
    gc.want();
    const b = gc.add([record('b')]);
    await store.finishNext();
    await b;
    expect(calls).toBe(1);
    expect(store.batches).toEqual([['a'], ['b']]);
  });

  it('rejects what a preparer added when the batch fails, and everything after it', async () => {
    let failures = 0;
    const gc = new GroupCommit(
      collected(async () => {
        throw new Error('disk full');
      }),
      () => (failures += 1),
    );
    let added: Promise<void> | undefined;
    gc.beforeBatch(() => {
      added ??= gc.add([record('sum')]);
    });
    gc.want();
    const own = gc.add([record('own')]);
    await expect(own).rejects.toThrow('disk full');
    await expect(added).rejects.toThrow('disk full');
    await expect(gc.add([record('later')])).rejects.toThrow('disk full');
    expect(failures).toBe(1);
  });
});
