import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ticker } from '../../../src/streams/clock.js';
import { decodeStream, encodeStream } from '../../../src/streams/codec.js';
import { newChunk, newModel, publicStream } from '../../../src/streams/model.js';
import { REMOTE_NODE } from '../../support/fake-lightning.js';
import { ManualClock, T0 } from './support.js';

describe('stream records', () => {
  it('round-trip a remote stream with its intent and payments in flight', () => {
    const s = newModel(
      {
        id: randomUUID(),
        payerAccountId: 'payer',
        payee: { nodePubkey: REMOTE_NODE, recipientId: randomUUID() },
        payeeAccountId: undefined,
        destination: REMOTE_NODE,
        recipientId: randomUUID(),
        rate: { kind: 'time', rateMsat: msat(1000), perSeconds: 60 },
        caps: { maxTotalMsat: msat(10n ** 18n), maxDurationSeconds: 3600 },
        intervalSeconds: 5,
        minPaymentMsat: msat(1000),
        prefundMsat: undefined,
        memo: 'quotes " and \\ and ☕',
        createdAt: T0,
      },
      { activeSince: T0, paid: 12_345n, seq: 4, failures: 2, drain: true },
    );
    s.inFlight.push({ paymentId: 'p1', amount: 1000n });
    s.intent = { seq: 4, amount: 2000n, total: 14_345n, activeSeconds: 99 };
    const back = decodeStream(encodeStream(s, 99_500));
    expect(back).toMatchObject({
      id: s.id,
      payee: s.payee,
      rate: s.rate,
      caps: s.caps,
      memo: s.memo,
      activeMsBefore: 99_500,
      activeSince: undefined,
      paid: 12_345n,
      seq: 4,
      failures: 2,
      drain: true,
      inFlight: [{ paymentId: 'p1', amount: 1000n }],
      intent: s.intent,
    });
    expect(publicStream(back, T0)).toMatchObject({ mode: 'remote', activeSeconds: 99, payments: 4 });
  });

  it('re-encodes the static part only after a state change', () => {
    const s = newModel({
      id: randomUUID(),
      payerAccountId: 'a',
      payee: { accountId: 'b' },
      payeeAccountId: 'b',
      destination: undefined,
      recipientId: undefined,
      rate: { kind: 'metered', priceMsatPerUnit: msat(3) },
      caps: {},
      intervalSeconds: 1,
      minPaymentMsat: msat(1000),
      prefundMsat: msat(3000),
      memo: undefined,
      createdAt: T0,
    });
    s.chunk = newChunk(randomUUID(), 3000n, 30n);
    const first = encodeStream(s, 1000);
    const cached = s.staticJson;
    s.paid = 30n;
    encodeStream(s, 2000);
    expect(s.staticJson).toBe(cached);
    // What moved of a chunk is the ledger's to say: the record keeps the transfer id and size.
    expect(decodeStream(first)).toMatchObject({
      chunk: { id: s.chunk.id, amount: 3000n, advanced: 0n },
      prefundMsat: 3000n,
    });
    expect(() => decodeStream('{"s":{"v":2},"d":{}}')).toThrow(/version/);
  });
});

describe('Ticker', () => {
  it('fires on the whole-second grid, and collapses missed seconds into one late tick', async () => {
    const clock = new ManualClock(T0 + 300);
    const seen: number[] = [];
    const ticker = new Ticker(clock, 1000, (t) => seen.push(t - T0));
    ticker.start();
    ticker.start(); // idempotent
    await clock.advance(2700);
    expect(seen).toEqual([1000, 2000, 3000]);
    clock.jump(4500); // blocked
    await clock.advance(0);
    expect(seen).toEqual([1000, 2000, 3000, 7000]);
    await clock.advance(1000);
    expect(seen.at(-1)).toBe(8000);
    ticker.stop();
    await clock.advance(5000);
    expect(seen).toHaveLength(5);
    expect(clock.pending).toBe(0);
  });

  it('keeps ticking when a tick throws', async () => {
    const clock = new ManualClock();
    let n = 0;
    const ticker = new Ticker(clock, 1000, () => {
      n += 1;
      throw new Error('boom');
    });
    ticker.start();
    await expect(clock.advance(1000)).rejects.toThrow('boom');
    await clock.advance(1000).catch(() => undefined);
    expect(n).toBe(2);
    ticker.stop();
  });
});
