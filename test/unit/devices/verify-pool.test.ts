import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { schnorrSign, schnorrVerify, xOnlyOf } from '../../../src/crypto/bip340.js';
import { VerifyPool } from '../../../src/devices/verify-pool.js';

const sha = (s: string): Buffer => createHash('sha256').update(s).digest();
const KEYS = Array.from({ length: 8 }, (_, i) => sha(`verify-pool key ${i}`).toString('hex'));
const PUBS = KEYS.map(xOnlyOf);
const ZERO_AUX = new Uint8Array(32);

interface Case {
  digest: Buffer;
  pub: string;
  sig: string;
  expected: boolean;
}

/** Valid signatures and every way one can fail: other digest, other key, bad encodings. */
function cases(n: number): Case[] {
  return Array.from({ length: n }, (_, i) => {
    const digest = sha(`message ${i}`);
    const k = i % KEYS.length;
    const sig = schnorrSign(digest, KEYS[k] as string, ZERO_AUX);
    const pub = PUBS[k] as string;
    switch (i % 6) {
      case 1:
        return { digest: sha(`other ${i}`), pub, sig, expected: false };
      case 2:
        return { digest, pub: PUBS[(k + 1) % PUBS.length] as string, sig, expected: false };
      case 3: {
        const flipped = (parseInt(sig[127] as string, 16) ^ 1).toString(16);
        return { digest, pub, sig: sig.slice(0, 127) + flipped, expected: false };
      }
      case 4:
        return { digest, pub: pub.toUpperCase(), sig, expected: false }; // protocol hex is lowercase
      default:
        return { digest, pub, sig, expected: true };
    }
  });
}

/** Malformed inputs that reach tiny-secp256k1's error paths. */
const OFF_CURVE = 'ff'.repeat(32); // x >= p: no such point
const S_TOO_BIG = (sig: string): string => sig.slice(0, 64) + 'ff'.repeat(32); // s >= n

const pools: VerifyPool[] = [];
async function started(options?: { workers?: number; maxBatch?: number }): Promise<VerifyPool> {
  const pool = await VerifyPool.start(options);
  pools.push(pool);
  return pool;
}
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

/** The pool's worker threads, for the crash test only (not part of the API). */
const workersOf = (pool: VerifyPool): (Worker | undefined)[] =>
  (pool as unknown as { slots: { worker: Worker | undefined }[] }).slots.map((s) => s.worker);

describe('VerifyPool', () => {
  it('verifies on worker threads (loaded from the .ts source under vitest)', async () => {
    const pool = await started({ workers: 2 });
    expect(pool.size).toBe(2);
    for (const c of cases(12)) expect(await pool.verify(c.digest, c.pub, c.sig)).toBe(c.expected);
  });

  it('starts one worker per core by default', async () => {
    const pool = await started();
    expect(pool.size).toBe(availableParallelism());
    expect(workersOf(pool)).toHaveLength(availableParallelism());
  });

  it('answers false, never throws, for malformed keys and signatures (like schnorrVerify)', async () => {
    const pool = await started({ workers: 1 });
    const [c] = cases(1) as [Case];
    expect(await pool.verify(c.digest, OFF_CURVE, c.sig)).toBe(false);
    expect(await pool.verify(c.digest, c.pub, S_TOO_BIG(c.sig))).toBe(false);
    expect(await pool.verify(c.digest, c.pub, 'ff'.repeat(64))).toBe(false);
    expect(await pool.verify(c.digest, c.pub.slice(2), c.sig)).toBe(false);
    expect(await pool.verify(c.digest, c.pub, `${c.sig}00`)).toBe(false);
    expect(await pool.verify(c.digest, 'zz'.repeat(32), c.sig)).toBe(false);
    await expect(pool.verify(c.digest.subarray(1), c.pub, c.sig)).rejects.toThrow(/32 bytes/);
    expect(await pool.verify(c.digest, c.pub, c.sig)).toBe(true);
  });

  it('survives thousands of off-curve keys (they would break libsecp256k1 WASM if let through)', async () => {
    const pool = await started({ workers: 1, maxBatch: 512 });
    const [c] = cases(1) as [Case];
    const answers = await Promise.all(
      Array.from({ length: 5_000 }, () => pool.verify(c.digest, OFF_CURVE, c.sig)),
    );
    expect(answers.every((a) => a === false)).toBe(true);
    expect(await pool.verify(c.digest, c.pub, c.sig)).toBe(true);
    expect(await pool.verify(sha('x'), c.pub, c.sig)).toBe(false);
  });

  it('answers many concurrent verifications in request order, each with its own answer', async () => {
    // maxBatch 7: batches split across both workers and flushed early when the stage fills.
    const pool = await started({ workers: 2, maxBatch: 7 });
    const all = cases(1_500);
    const answers = await Promise.all(all.map((c) => pool.verify(c.digest, c.pub, c.sig)));
    expect(answers).toEqual(all.map((c) => c.expected));
    expect(answers).toEqual(all.map((c) => schnorrVerify(c.digest, c.pub, c.sig)));
  });

  it('close() answers what was asked before it, stops the workers, then verifies inline', async () => {
    const pool = await started({ workers: 2 });
    const all = cases(60);
    const answers = Promise.all(all.map((c) => pool.verify(c.digest, c.pub, c.sig)));
    const workers = workersOf(pool);
    await pool.close();
    expect(await answers).toEqual(all.map((c) => c.expected));
    expect(pool.size).toBe(0);
    expect(workersOf(pool)).toEqual([undefined, undefined]);
    expect(workers.every((w) => w?.threadId === -1)).toBe(true); // terminated
    const [c] = all as [Case];
    expect(await pool.verify(c.digest, c.pub, c.sig)).toBe(true);
    await pool.close(); // idempotent
  });

  it('falls back to the calling thread when not started or started with 0 workers', async () => {
    const all = cases(18);
    for (const pool of [new VerifyPool(), await started({ workers: 0 })]) {
      expect(pool.size).toBe(0);
      for (const c of all) expect(await pool.verify(c.digest, c.pub, c.sig)).toBe(c.expected);
      const [c] = all as [Case];
      expect(await pool.verify(c.digest, OFF_CURVE, c.sig)).toBe(false);
      expect(await pool.verify(c.digest, c.pub, S_TOO_BIG(c.sig))).toBe(false); // schnorrVerify throws
      await expect(pool.verify(new Uint8Array(31), c.pub, c.sig)).rejects.toThrow(/32 bytes/);
    }
  });

  it('a crashed worker fails its in-flight verifications clearly and is replaced', async () => {
    const pool = await started({ workers: 2, maxBatch: 16 });
    const [crashing] = workersOf(pool) as [Worker];
    // The worker throws on this message: an uncaught error, the thread dies. Messages are handled
    // in order, so the batches sent after it are in flight when it dies.
    crashing.postMessage(null);
    const all = cases(400);
    const pending = all.map((c) =>
      pool.verify(c.digest, c.pub, c.sig).then(
        (ok) => ok,
        (e: Error) => e,
      ),
    );
    const results = await Promise.all(pending);
    const failed = results.filter((r): r is Error => r instanceof Error);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]?.message).toMatch(
      /signature verification worker 0 died \(TypeError: .*null.*\); its \d+ pending verification\(s\) were not answered/,
    );
    results.forEach((r, i) => {
      if (!(r instanceof Error)) expect(r).toBe(all[i]?.expected);
    });
    // Replaced: the pool keeps its two workers and keeps answering.
    await expect.poll(() => workersOf(pool)[0] !== undefined && workersOf(pool)[0] !== crashing).toBe(true);
    const again = await Promise.all(all.slice(0, 60).map((c) => pool.verify(c.digest, c.pub, c.sig)));
    expect(again).toEqual(all.slice(0, 60).map((c) => c.expected));
    expect(pool.size).toBe(2);
  });
});
