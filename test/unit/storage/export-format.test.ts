import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import {
  decodeItem,
  encodeItem,
  ExportReader,
  ExportWriter,
  type ExportItem,
} from '../../../src/storage/export/format.js';

const items: ExportItem[] = [
  {
    k: 'account',
    account: {
      id: 'alice',
      kind: 'agent',
      name: 'Alice',
      allowNegative: false,
      frozen: true,
      creditsPosted: 2_100_000_000_000_000_000n,
      debitsPosted: 9_007_199_254_740_993n,
      creditsPending: 0n,
      debitsPending: 1n,
      createdAt: 1700000000000,
    },
  },
  {
    k: 'transfer',
    transfer: {
      id: 't1',
      debitAccountId: 'alice',
      creditAccountId: 'bob',
      amount: msat(9_007_199_254_740_993n),
      state: 'pending',
      code: 'stream',
      advanced: msat(3n),
      timeoutAt: 5,
      createdAt: 4,
    },
  },
  { k: 'key', key: 'order-7', transferId: 't1', fingerprint: 'f', at: 4 },
  {
    k: 'journal',
    entry: { seq: 1, at: 4, type: 'transfer_created', accountIds: ['alice', 'bob'], transferId: 't1' },
  },
  { k: 'record', key: 'pay!p1', value: '{"a":"1"}\n' },
  { k: 'cursor', name: 'lightning/invoice-cursor', addIndex: 7, settleIndex: 3 },
];

function exported(): string[] {
  const w = new ExportWriter('leveldb');
  const text = w.header(new Date(0)) + items.map((i) => w.item(i)).join('') + w.trailer();
  return text.split('\n').slice(0, -1);
}

function read(lines: string[]): { items: ExportItem[]; reader: ExportReader } {
  const reader = new ExportReader();
  const out: ExportItem[] = [];
  for (const l of lines) {
    const item = reader.line(l);
    if (item) out.push(item);
  }
  return { items: out, reader };
}

describe('store export format', () => {
  it('round-trips every kind exactly, amounts beyond 2^53 included', () => {
    for (const item of items) expect(decodeItem(encodeItem(item))).toEqual(item);
    expect(encodeItem(items[0]!)).toContain('"creditsPosted":"2100000000000000000"');
  });

  it('reads back what it wrote, with counts and digests per kind', () => {
    const { items: back, reader } = read(exported());
    expect(back).toEqual(items);
    const { header, summary } = reader.finish();
    expect(header).toMatchObject({ format: 'coulomb-store-export', version: 1, source: 'leveldb' });
    expect(summary.counts).toEqual({ account: 1, transfer: 1, key: 1, journal: 1, record: 1, cursor: 1 });
  });

  it('refuses a file cut before its trailer', () => {
    const { reader } = read(exported().slice(0, -1));
    expect(() => reader.finish()).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_TRUNCATED' }) as Error,
    );
  });

  it('refuses an edited line, a dropped line and data after the trailer', () => {
    const edited = exported().map((l) => l.replace('"debitsPending":"1"', '"debitsPending":"2"'));
    expect(() => read(edited)).toThrow(expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error);
    const dropped = exported().filter((l) => !l.startsWith('{"k":"key"'));
    expect(() => read(dropped)).toThrow(expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error);
    expect(() => read([...exported(), '{"k":"record","key":"x","value":"y"}'])).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error,
    );
  });

  it('refuses an unknown format version, a non-export file and malformed items', () => {
    const lines = exported();
    const v2 = [lines[0]!.replace('"version":1', '"version":2'), ...lines.slice(1)];
    expect(() => read(v2)).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_VERSION_UNKNOWN' }) as Error,
    );
    expect(() => read(['{"hello":1}'])).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error,
    );
    expect(() => decodeItem('{"k":"transfer","id":"t","amount":12}')).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error,
    );
    expect(() => decodeItem('{"k":"nope"}')).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error,
    );
    expect(() => decodeItem('not json')).toThrow(
      expect.objectContaining({ code: 'STORE_EXPORT_CORRUPT' }) as Error,
    );
  });
});
