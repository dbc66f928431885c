import { describe, expect, it } from 'vitest';
import type { Ledger } from '../../../src/ledger/ledger.js';
import { IndexedItems, RecordIndex } from '../../../src/ledger/record-index.js';

interface Item {
  id: string;
  createdAt: number;
  state: 'open' | 'done';
}

const ID = '7b0c5c1e-2f7e-4f5e-9a43-1d2b3c4d5e6f';

/** Items over a record map standing in for the shared store (`getRecord` is all `reread` reads). */
function items(): { items: IndexedItems<Item>; stored: Map<string, string>; index: RecordIndex<Item> } {
  const index = new RecordIndex<Item>(
    'thing',
    { encode: (i) => JSON.stringify(i), decode: (raw) => JSON.parse(raw) as Item },
    () => [],
    (i) => i.state === 'done',
  );
  const stored = new Map<string, string>();
  const ledger = { getRecord: async (key: string) => stored.get(key) } as unknown as Ledger;
  return { items: new IndexedItems(index, ledger), stored, index };
}

describe('IndexedItems.reread on a shared store', () => {
  it('keeps memory’s final copy while its own write is not in the store yet (never files the older open one again)', async () => {
    const { items: kept, stored, index } = items();
    const live: Item = { id: ID, createdAt: 1, state: 'open' };
    stored.set(index.key(ID), JSON.stringify(live));
    kept.remember(live);
    // This instance finalizes it; the write carrying the final record has not landed yet.
    live.state = 'done';
    kept.remember(live);
    const read = await kept.reread(ID);
    expect(read).toBe(live);
    expect(kept.openItem(ID)).toBeUndefined();

    // Once the write landed, the store's copy is the same final state.
    stored.set(index.key(ID), JSON.stringify(live));
    expect(await kept.reread(ID)).toEqual(live);
    expect(kept.openItem(ID)).toBeUndefined();
  });

  it('takes the store’s final copy of an item another instance finished', async () => {
    const { items: kept, stored, index } = items();
    const mine: Item = { id: ID, createdAt: 1, state: 'open' };
    kept.remember(mine);
    stored.set(index.key(ID), JSON.stringify({ ...mine, state: 'done' }));
    expect(await kept.reread(ID)).toEqual({ id: ID, createdAt: 1, state: 'done' });
    expect(kept.openItem(ID)).toBeUndefined();
  });

  it('keeps memory’s open copy while both are open, and files an open item read from the store', async () => {
    const { items: kept, stored, index } = items();
    const mine: Item = { id: ID, createdAt: 1, state: 'open' };
    stored.set(index.key(ID), JSON.stringify(mine));
    expect(await kept.reread(ID)).toEqual(mine);
    expect(kept.openItem(ID)).toEqual(mine);
    const held = kept.openItem(ID)!;
    expect(await kept.reread(ID)).toBe(held);
  });
});
