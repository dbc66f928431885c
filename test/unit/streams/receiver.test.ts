import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { BLIP10_RECORD, encodeStreamRecord, streamRecords } from '../../../src/streams/records.js';
import type { StreamEvent } from '../../../src/streams/types.js';
import { FakeLightning, REMOTE_NODE } from '../../support/fake-lightning.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';
import type { FixtureOptions, StreamsFixture } from './support.js';
import { balance, closingFixtures, keysendInvoice, ManualClock, OPEN } from './support.js';

const open = closingFixtures();
async function fixture(o?: FixtureOptions): Promise<StreamsFixture> {
  const f = await open(o);
  await f.account('alice', 0n);
  return f;
}

const tagged = (streamId: string, seq: number, recipientId?: string) =>
  streamRecords({
    streamId,
    seq,
    ...(recipientId ? { recipientId } : {}),
    valueMsat: 1000n,
    totalMsat: 1000n * BigInt(seq),
    activeSeconds: seq,
  });
const hexJson = (o: unknown): string => Buffer.from(JSON.stringify(o), 'utf8').toString('hex');
const lapses = (f: StreamsFixture): StreamEvent['type'][] =>
  f.events.filter((e) => e.event.type !== 'stream').map((e) => e.event.type);

describe('StreamReceiver', () => {
  it('creates inboxes on this node, persisted and listed per account', async () => {
    const f = await fixture();
    const inbox = await f.receiver.createInbox('alice', { graceSeconds: 30 });
    expect(inbox).toEqual({
      recipientId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      nodePubkey: f.service.nodeId,
    });
    expect(f.receiver.getInbox(inbox.recipientId)).toMatchObject({ accountId: 'alice', graceSeconds: 30 });
    expect(f.receiver.listInboxes('alice')).toHaveLength(1);
    expect(f.store.records.has(`streaminbox!${inbox.recipientId}`)).toBe(true);
    expect(() => f.receiver.getInbox(randomUUID())).toThrow(
      expect.objectContaining({ code: 'INBOX_NOT_FOUND' }),
    );
    await expect(f.receiver.createInbox('sys:operator')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(f.receiver.createInbox('ghost')).rejects.toMatchObject({ code: 'ACCOUNT_NOT_FOUND' });
    for (const graceSeconds of [0, 1.5, 86_401])
      await expect(f.receiver.createInbox('alice', { graceSeconds })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
  });

  it('credits a stream keysend to the recipient once, however often LND delivers it', async () => {
    const f = await fixture();
    const { recipientId } = await f.receiver.createInbox('alice');
    const streamId = randomUUID();
    const inv = keysendInvoice(1000n, tagged(streamId, 1, recipientId), f.clock.now());
    await f.receiver.onInvoice(inv);
    await f.receiver.onInvoice(inv);
    await f.receiver.onInvoice({ ...inv });
    expect(balance(f, 'alice')).toBe(1000n);
    const credit = await f.ledger.findByIdempotencyKey(`keysend:${inv.paymentHash}`);
    expect(credit).toMatchObject({
      debitAccountId: 'sys:lightning',
      creditAccountId: 'alice',
      code: 'stream_in',
    });
    expect(await f.receiver.getIncoming(streamId)).toMatchObject({
      recipientId,
      accountId: 'alice',
      totalMsat: 1000n,
      payments: 1,
      lastSeq: 1,
      missingSeqs: 0,
      lapsed: false,
    });
    expect(f.store.records.has(`streamin!${streamId}`)).toBe(true);
  });

  it('ignores invoices that are not settled keysends', async () => {
    const f = await fixture();
    const { recipientId } = await f.receiver.createInbox('alice');
    const inv = keysendInvoice(1000n, tagged(randomUUID(), 1, recipientId));
    await f.receiver.onInvoice({ ...inv, state: 'accepted' });
    await f.receiver.onInvoice({ ...inv, isKeysend: false });
    await f.receiver.onInvoice({ ...inv, receivedMsat: msat(0) });
    expect(balance(f, 'alice')).toBe(0n);
    expect(await f.ledger.findByIdempotencyKey(`keysend:${inv.paymentHash}`)).toBeUndefined();
  });

  it('understands bLIP-10 alone: by recipient, or by a stream it already knows', async () => {
    const f = await fixture();
    const { recipientId } = await f.receiver.createInbox('alice');
    const streamId = randomUUID();
    const json = (o: object) => [{ type: BLIP10_RECORD, value: hexJson({ action: 'stream', ...o }) }];
    await f.receiver.onInvoice(
      keysendInvoice(500n, json({ uuid: streamId, recipient: recipientId, seq: 1 })),
    );
    await f.receiver.onInvoice(keysendInvoice(700n, json({ uuid: streamId, seq: 2 })));
    expect(balance(f, 'alice')).toBe(1200n);
    expect(await f.receiver.getIncoming(streamId)).toMatchObject({
      totalMsat: 1200n,
      payments: 2,
      lastSeq: 2,
    });
  });

  it('credits keysends without a known recipient to the operator, with a warning', async () => {
    const f = await fixture();
    const operator = balance(f, 'sys:operator');
    await f.receiver.onInvoice(keysendInvoice(300n, []));
    await f.receiver.onInvoice(keysendInvoice(400n, tagged(randomUUID(), 1, randomUUID())));
    await f.receiver.onInvoice(keysendInvoice(500n, tagged(randomUUID(), 1)));
    expect(balance(f, 'sys:operator') - operator).toBe(1200n);
    expect(f.log.warnings.filter((w) => w.msg?.includes('credited to the operator'))).toHaveLength(3);
    expect((await f.receiver.listIncoming('alice')).incoming).toEqual([]);
  });

  it('tolerates missing and late sequence numbers, counting the gaps', async () => {
    const f = await fixture();
    const { recipientId } = await f.receiver.createInbox('alice');
    const streamId = randomUUID();
    for (const seq of [1, 2, 5])
      await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, seq, recipientId)));
    expect(await f.receiver.getIncoming(streamId)).toMatchObject({ lastSeq: 5, missingSeqs: 2, payments: 3 });
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, 3, recipientId)));
    expect(await f.receiver.getIncoming(streamId)).toMatchObject({
      lastSeq: 5,
      missingSeqs: 1,
      payments: 4,
      totalMsat: 4000n,
    });
  });

  it('reports a stream lapsed once after its grace period, and resumed when payments return', async () => {
    const f = await fixture();
    const { recipientId } = await f.receiver.createInbox('alice', { graceSeconds: 5 });
    const streamId = randomUUID();
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, 1, recipientId), f.clock.now()));
    await f.clock.advance(5000);
    expect(lapses(f)).toEqual([]);
    await f.clock.advance(1000);
    expect(lapses(f)).toEqual(['stream_lapsed']);
    await f.clock.advance(20_000);
    expect(lapses(f)).toEqual(['stream_lapsed']);
    const lapsed = f.events.find((e) => e.event.type === 'stream_lapsed')!;
    expect(lapsed).toMatchObject({ accountId: 'alice', event: { incoming: { streamId, lapsed: true } } });
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, 2, recipientId), f.clock.now()));
    expect(lapses(f)).toEqual(['stream_lapsed', 'stream_resumed']);
    expect((await f.receiver.getIncoming(streamId))?.lapsed).toBe(false);
    await f.clock.advance(7000);
    expect(lapses(f)).toEqual(['stream_lapsed', 'stream_resumed', 'stream_lapsed']);
  });

  it('a late catch-up delivery does not count as the stream resuming', async () => {
    const f = await fixture();
    const { recipientId } = await f.receiver.createInbox('alice', { graceSeconds: 5 });
    const streamId = randomUUID();
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, 1, recipientId), f.clock.now()));
    await f.clock.advance(10_000);
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, 2, recipientId), f.clock.now() - 9000));
    expect(lapses(f)).toEqual(['stream_lapsed']);
    expect(balance(f, 'alice')).toBe(2000n);
  });

  it('keeps inboxes and incoming summaries across a restart', async () => {
    const store = new MemoryLedgerStore();
    const clock = new ManualClock();
    const lightning = new FakeLightning();
    const f = await fixture({ store, clock, lightning });
    const { recipientId } = await f.receiver.createInbox('alice');
    const streamId = randomUUID();
    await f.receiver.onInvoice(keysendInvoice(1000n, tagged(streamId, 1, recipientId), clock.now()));
    await f.close();
    const g = await fixture({ store, clock, lightning });
    expect(g.receiver.accountOf(recipientId)).toBe('alice');
    expect(await g.receiver.getIncoming(streamId)).toMatchObject({ totalMsat: 1000n, lastSeq: 1 });
    await g.receiver.onInvoice(
      keysendInvoice(1000n, [{ type: 133773310n, value: encodeStreamRecord({ streamId, seq: 2 }) }]),
    );
    expect(await g.receiver.getIncoming(streamId)).toMatchObject({
      totalMsat: 2000n,
      lastSeq: 2,
      payments: 2,
    });
  });

  it('end to end: what one gateway streams, the other credits to the inbox account', async () => {
    const payer = await fixture();
    await payer.account('bob', 1_000_000n, OPEN);
    const payee = await fixture();
    const inbox = await payee.receiver.createInbox('alice');
    const s = await payer.streams.create('bob', {
      payee: { nodePubkey: REMOTE_NODE, recipientId: inbox.recipientId },
      rateMsat: msat(1000),
      perSeconds: 3,
      minPaymentMsat: msat(500),
    });
    await payer.clock.advance(10_000);
    await payer.streams.stop(s.id);
    await payer.clock.advance(2000);
    for (const p of (await payer.service.listPayments('bob')).reverse()) {
      const records = p.records!.map((r) => ({ type: BigInt(r.type), value: r.value }));
      await payee.receiver.onInvoice(keysendInvoice(p.amountMsat, records, payee.clock.now()));
    }
    expect(balance(payee, 'alice')).toBe(3333n);
    expect((await payer.streams.get(s.id)).paidMsat).toBe(3333n);
    expect(await payee.receiver.getIncoming(s.id)).toMatchObject({
      totalMsat: 3333n,
      missingSeqs: 0,
      accountId: 'alice',
    });
  });
});
