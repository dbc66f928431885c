import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  FRAME_MAX_BYTES,
  FrameAssembler,
  frames,
  MAX_FRAMES,
  type RelayMessage,
} from '../../../src/storage/postgres/event-relay-wire.js';

const sender = '0b6f3a52-4a1e-4c55-9d0e-2d7b1f1b9c11';

describe('the event relay wire format', () => {
  it('keeps bigints and every character through frames under the NOTIFY limit', () => {
    const message: RelayMessage = {
      k: 'e',
      a: 'alice',
      e: { type: 'task', task: { text: 'é€😀|'.repeat(5_000), reward: 2n ** 70n, n: 3, none: null } },
    };
    const parts = frames(sender, 7, encodeMessage(message))!;
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(FRAME_MAX_BYTES);
    const assembler = new FrameAssembler();
    const wholes = parts.map((p) => assembler.accept(p));
    expect(wholes.slice(0, -1)).toEqual(parts.slice(1).map(() => undefined));
    expect(wholes.at(-1)!.sender).toBe(sender);
    expect(decodeMessage(wholes.at(-1)!.body)).toEqual(message);
  });

  it('drops a message whose frames were cut short, and takes the next whole one', () => {
    const big = frames(
      sender,
      1,
      encodeMessage({
        k: 'e',
        a: 'a',
        e: { type: 'alert', accountId: 'a', code: 'c', message: 'x'.repeat(20_000) },
      }),
    )!;
    const small = frames(sender, 2, encodeMessage({ k: 'h' }))!;
    const assembler = new FrameAssembler();
    expect(assembler.accept(big[0]!)).toBeUndefined();
    expect(decodeMessage(assembler.accept(small[0]!)!.body)).toEqual({ k: 'h' });
    expect(assembler.dropped).toBe(1);
    expect(assembler.accept('not a frame')).toBeUndefined();
    expect(decodeMessage('{"k":"zz"}')).toBeUndefined();
  });

  it('refuses a message that would take more than MAX_FRAMES', () => {
    expect(frames(sender, 1, 'x'.repeat(FRAME_MAX_BYTES * (MAX_FRAMES + 1)))).toBeUndefined();
  });
});
