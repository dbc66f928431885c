import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { StreamError } from '../../../src/streams/errors.js';
import { StreamsService } from '../../../src/streams/service.js';
import type { CreateStreamInput } from '../../../src/streams/types.js';
import { REMOTE_NODE } from '../../support/fake-lightning.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import type { StreamsFixture } from './support.js';
import { balance, closingFixtures, ManualClock, settle, silent, streamsFixture } from './support.js';

const fixture = closingFixtures();

const local = { accountId: 'payee' };
const remote = { nodePubkey: REMOTE_NODE };

describe('stream validation', () => {
  const invalid: [string, unknown][] = [
    ['no rate nor price', { payee: local }],
    ['both rate and price', { payee: local, rateMsat: msat(1), priceMsatPerUnit: msat(1) }],
    ['a zero rate', { payee: local, rateMsat: 0n }],
    ['a number for an amount', { payee: local, rateMsat: 1000 }],
    ['a string for an amount', { payee: local, rateMsat: '1000' }],
    ['a fractional perSeconds', { payee: local, rateMsat: msat(1), perSeconds: 1.5 }],
    ['perSeconds zero', { payee: local, rateMsat: msat(1), perSeconds: 0 }],
    ['perSeconds without a rate', { payee: local, priceMsatPerUnit: msat(1), perSeconds: 2 }],
    ['a zero cap', { payee: local, rateMsat: msat(1), maxTotalMsat: 0n }],
    ['a negative duration', { payee: local, rateMsat: msat(1), maxDurationSeconds: -1 }],
    ['caps that allow nothing', { payee: local, rateMsat: msat(1), perSeconds: 60, maxDurationSeconds: 30 }],
    ['an interval for a local payee', { payee: local, rateMsat: msat(1), intervalSeconds: 2 }],
    ['a minimum for a local payee', { payee: local, rateMsat: msat(1), minPaymentMsat: msat(1) }],
    ['an interval of zero', { payee: remote, rateMsat: msat(1), intervalSeconds: 0 }],
    ['an interval over an hour', { payee: remote, rateMsat: msat(1), intervalSeconds: 3601 }],
    ['a prefund for a time stream', { payee: local, rateMsat: msat(1), prefundMsat: msat(5) }],
    ['a prefund for a remote payee', { payee: remote, priceMsatPerUnit: msat(1), prefundMsat: msat(5) }],
    ['a long memo', { payee: local, rateMsat: msat(1), memo: 'x'.repeat(257) }],
    ['an unknown field', { payee: local, rateMsat: msat(1), rate: 5 }],
    ['no payee', { rateMsat: msat(1) }],
    ['both kinds of payee', { payee: { accountId: 'payee', nodePubkey: REMOTE_NODE }, rateMsat: msat(1) }],
    ['a malformed node id', { payee: { nodePubkey: '02abc' }, rateMsat: msat(1) }],
    [
      'an uppercase recipient id',
      { payee: { nodePubkey: REMOTE_NODE, recipientId: 'A'.repeat(36) }, rateMsat: msat(1) },
    ],
    ['the payer itself', { payee: { accountId: 'payer' }, rateMsat: msat(1) }],
    ['a system account', { payee: { accountId: 'sys:operator' }, rateMsat: msat(1) }],
  ];

  it.each(invalid)('refuses %s with INVALID_ARGUMENT (400)', async (_name, input) => {
    const f = await fixture();
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const err = await f.streams.create('payer', input as CreateStreamInput).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StreamError);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', status: 400 });
    expect((await f.streams.list('payer')).streams).toEqual([]);
  });

  it('names the missing payee, the unknown inbox, and the unknown payer', async () => {
    const f = await fixture();
    await f.account('payer', 1_000_000n);
    await expect(
      f.streams.create('payer', { payee: { accountId: 'ghost' }, rateMsat: msat(1) }),
    ).rejects.toMatchObject({ code: 'STREAM_PAYEE_NOT_FOUND', status: 404 });
    await expect(
      f.streams.create('payer', {
        payee: { nodePubkey: f.service.nodeId, recipientId: '00000000-0000-4000-8000-000000000000' },
        rateMsat: msat(1),
      }),
    ).rejects.toMatchObject({ code: 'INBOX_NOT_FOUND', status: 404 });
    await expect(
      f.streams.create('payer', { payee: { nodePubkey: f.service.nodeId }, rateMsat: msat(1) }),
    ).rejects.toMatchObject({ code: 'INBOX_NOT_FOUND' });
    await expect(
      f.streams.create('ghost', { payee: { accountId: 'payer' }, rateMsat: msat(1) }),
    ).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND', status: 404 });
  });
});

describe('stream states', () => {
  it('answers each wrong transition with a stable code', async () => {
    const f = await fixture();
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const s = await f.streams.create('payer', { payee: local, rateMsat: msat(1) });
    await expect(f.streams.resume(s.id)).rejects.toMatchObject({ code: 'STREAM_NOT_PAUSED', status: 409 });
    await expect(f.streams.reportUsage(s.id, 1)).rejects.toMatchObject({
      code: 'STREAM_NOT_METERED',
      status: 400,
    });
    await f.streams.pause(s.id);
    await expect(f.streams.pause(s.id)).rejects.toMatchObject({ code: 'STREAM_NOT_ACTIVE', status: 409 });
    await f.streams.stop(s.id);
    for (const op of [() => f.streams.pause(s.id), () => f.streams.resume(s.id), () => f.streams.stop(s.id)])
      await expect(op()).rejects.toMatchObject({ code: 'STREAM_STOPPED', status: 409 });
    await expect(f.streams.get('nope')).rejects.toMatchObject({ code: 'STREAM_NOT_FOUND', status: 404 });
    await expect(f.streams.stop('nope')).rejects.toMatchObject({ code: 'STREAM_NOT_FOUND' });
    await expect(f.streams.stop(s.id, 'x'.repeat(300))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('accepts only positive integer usage', async () => {
    const f = await fixture();
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const s = await f.streams.create('payer', { payee: local, priceMsatPerUnit: msat(1) });
    for (const units of [0, -1, 1.5, Number.NaN, 2 ** 60, '3'])
      await expect(f.streams.reportUsage(s.id, units as number)).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    await f.streams.pause(s.id);
    await expect(f.streams.reportUsage(s.id, 1)).rejects.toMatchObject({ code: 'STREAM_NOT_ACTIVE' });
  });

  it('refuses to create or resume before start and after shutdown', async () => {
    const f = await fixture();
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const s = await f.streams.create('payer', { payee: local, rateMsat: msat(1) });
    await f.streams.pause(s.id);
    await f.streams.stop();
    await expect(f.streams.create('payer', { payee: local, rateMsat: msat(1) })).rejects.toMatchObject({
      code: 'STREAMS_NOT_RUNNING',
    });
    await expect(f.streams.resume(s.id)).rejects.toMatchObject({ code: 'STREAMS_NOT_RUNNING' });
  });
});

describe('restarts', () => {
  async function reopen(store: MemoryLedgerStore, clock: ManualClock, f: StreamsFixture) {
    return fixture({ store, clock, lightning: f.lightning });
  }

  it('a graceful restart keeps the chunk and bills no downtime', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await streamsFixture({ store, clock });
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const s = await f.streams.create('payer', { payee: local, rateMsat: msat(1000), perSeconds: 3 });
    await clock.advance(5400);
    await f.close();
    expect(balance(f, 'payee')).toBe(1666n); // settled at shutdown: 5 s of 1000/3
    clock.jump(3_600_000);
    const g = await reopen(store, clock, f);
    expect(await g.streams.get(s.id)).toMatchObject({ state: 'active', activeSeconds: 5, paidMsat: 1666n });
    const chunks = g.ledger.pendingTransfers().filter((t) => t.code === 'stream');
    expect(chunks).toHaveLength(1);
    await clock.advance(1000); // 5.4 + 1 s active: the remainder of the last second carried over
    expect(balanceOf(await g.ledger.requireAccount('payee'))).toBe(2000n);
    expect((await g.streams.get(s.id)).activeSeconds).toBe(6);
    expect(g.ledger.pendingTransfers().filter((t) => t.code === 'stream')).toHaveLength(1);
  });

  it('after a crash the record and the ledger agree: what moved is what the stream counts as paid', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await streamsFixture({ store, clock });
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const s = await f.streams.create('payer', { payee: local, rateMsat: msat(100) });
    await clock.advance(7000);
    // No shutdown: the process dies here. Only what reached the store survives.
    f.service.stop();
    clock.clearAll();
    clock.jump(60_000);
    const g = await reopen(store, clock, f);
    const paid = (await g.streams.get(s.id)).paidMsat;
    expect(paid).toBe(700n);
    expect(balanceOf(await g.ledger.requireAccount('payee'))).toBe(paid);
    await clock.advance(2000);
    expect(balanceOf(await g.ledger.requireAccount('payee'))).toBe(900n);
  });

  it('paused and stopped streams come back as they were', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const f = await streamsFixture({ store, clock });
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    const a = await f.streams.create('payer', { payee: local, rateMsat: msat(10), memo: 'café ☕ "quoted"' });
    const b = await f.streams.create('payer', {
      payee: local,
      priceMsatPerUnit: msat(7),
      maxTotalMsat: msat(700),
    });
    await f.streams.reportUsage(b.id, 4);
    await clock.advance(2000);
    await f.streams.pause(a.id);
    await f.streams.stop(b.id);
    const before = [await f.streams.get(a.id), await f.streams.get(b.id)];
    await f.close();
    const g = await reopen(store, clock, f);
    expect([await g.streams.get(a.id), await g.streams.get(b.id)]).toEqual(before);
    await clock.advance(5000);
    expect((await g.streams.get(a.id)).paidMsat).toBe(20n);
    await g.streams.resume(a.id);
    await clock.advance(1000);
    expect((await g.streams.get(a.id)).paidMsat).toBe(30n);
  });

  it('skips an unreadable record with an error instead of failing to start', async () => {
    const store = new MemoryLedgerStore();
    const ledger = await Ledger.open(store);
    await ledger.putRecords([{ key: 'stream!broken', value: '{"s":{"v":9}}' }]);
    const errors: object[] = [];
    const svc = new StreamsService({
      ledger,
      payments: {
        authorizeSpend: () => undefined,
        prepare: () => Promise.resolve(),
        spendReady: () => true,
        keysend: () => Promise.reject(new Error('x')),
        getPayment: () => undefined,
        nodeId: 'n',
      },
      publish: () => undefined,
      log: { ...silent, error: (o: object) => void errors.push(o) },
      clock: new ManualClock(),
    });
    await svc.start();
    expect(errors).toHaveLength(1);
    await svc.stop();
    await settle();
  });

  it('stops ticking when the ledger fails (the process must restart), without unhandled rejections', async () => {
    const f = await streamsFixture();
    await f.account('payer', 1_000_000n);
    await f.account('payee', 0n);
    await f.streams.create('payer', { payee: local, rateMsat: msat(1000) });
    await f.clock.advance(1000);
    f.store.failNext = true;
    await f.clock.advance(3000);
    expect(f.log.errors.some((e) => e.msg?.includes('streams stopped ticking'))).toBe(true);
    await expect(f.streams.create('payer', { payee: local, rateMsat: msat(1) })).rejects.toMatchObject({
      code: 'STREAMS_NOT_RUNNING',
    });
    await f.streams.stop();
    f.receiver.stop();
    f.service.stop();
  });
});
