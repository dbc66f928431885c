import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { resilientStream } from '../../../src/lightning/lnd/resilient-stream.js';

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('resilientStream', () => {
  it('reopens after an error or end and re-attaches listeners, until closed', async () => {
    const opened: EventEmitter[] = [];
    const seen: string[] = [];
    const errors: unknown[] = [];
    const sub = resilientStream({
      open: () => {
        const e = new EventEmitter();
        opened.push(e);
        return e;
      },
      attach: (e) => e.on('data', (v: string) => seen.push(v)),
      onError: (err) => errors.push(err),
      minBackoffMs: 1,
      maxBackoffMs: 4,
    });
    await tick();
    opened[0]!.emit('data', 'a');
    opened[0]!.emit('error', new Error('boom'));
    await tick(20);
    expect(opened).toHaveLength(2);
    // The dead stream no longer delivers; its late errors are swallowed.
    opened[0]!.emit('data', 'stale');
    opened[0]!.emit('error', new Error('late'));
    opened[1]!.emit('data', 'b');
    opened[1]!.emit('end');
    await tick(20);
    expect(opened).toHaveLength(3);
    expect(sub.reconnects).toBe(2);
    sub.close();
    opened[2]!.emit('error', new Error('after close'));
    await tick(20);
    expect(opened).toHaveLength(3);
    expect(seen).toEqual(['a', 'b']);
    expect(errors).toHaveLength(1);
  });

  it('retries when opening itself throws', async () => {
    let attempts = 0;
    const sub = resilientStream({
      open: () => {
        attempts += 1;
        if (attempts < 3) throw new Error('unavailable');
        return new EventEmitter();
      },
      attach: () => undefined,
      minBackoffMs: 1,
    });
    await tick(40);
    sub.close();
    expect(attempts).toBe(3);
  });
});
