import { availableParallelism } from 'node:os';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { schnorrVerify } from '../crypto/bip340.js';
import type { VerifyBatch, VerifyWorkerMessage } from './verify-worker.js';

export interface VerifyPoolOptions {
  /** Worker threads (default: `os.availableParallelism()`); 0 verifies on the calling thread. */
  workers?: number;
  /** Most triples in one message to a worker (default 64). */
  maxBatch?: number;
}

/** Bytes per triple: digest[32] ‖ x-only public key[32] ‖ signature[64] (as verify-worker.ts). */
const TRIPLE_BYTES = 128;
const DEFAULT_MAX_BATCH = 64;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX128 = /^[0-9a-f]{128}$/;

interface Waiter {
  resolve: (ok: boolean) => void;
  reject: (err: Error) => void;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  /** Batches sent and not answered, by id. */
  readonly batches: Map<number, Waiter[]>;
  /** Triples in those batches. */
  inFlight: number;
  /** Starts that died before their worker said ready, in a row (respawn backoff). */
  failedStarts: number;
  ready: boolean;
  respawnTimer: NodeJS.Timeout | undefined;
}

/**
 * Verifies BIP340 signatures (32-byte digest, x-only key, signature) on worker threads, each with
 * its own verifier: the native libsecp256k1 addon when it was built and not turned off
 * (COULOMB_NATIVE_VERIFY=0), else tiny-secp256k1 (libsecp256k1 in WASM). Verifications requested in the same event-loop turn go
 * out as one message per worker (triples packed into one transferred ArrayBuffer, at most
 * `maxBatch` per message, to the least loaded workers) and come back as one byte per triple.
 *
 * Answers are those of `schnorrVerify` (src/crypto/bip340.ts): malformed keys or signatures are
 * `false`. A pool made with `new VerifyPool()`, started with 0 workers, or closed, verifies inline
 * on the calling thread. A worker that dies rejects the verifications it was given and is
 * replaced.
 */
export class VerifyPool {
  private readonly slots: Slot[] = [];
  private maxBatch = DEFAULT_MAX_BATCH;
  private workerCount = 0;
  private closed = true;
  /** Triples of this turn, not yet sent, packed in `stage`; their waiters in `staged`. */
  private stageBuffer = new ArrayBuffer(0);
  private stage = Buffer.from(this.stageBuffer);
  private readonly staged: Waiter[] = [];
  private flushScheduled = false;
  private nextBatchId = 1;
  private readonly idle: (() => void)[] = [];

  /** Starts the workers and resolves once every one has loaded libsecp256k1. */
  static async start(options: VerifyPoolOptions = {}): Promise<VerifyPool> {
    const workers = options.workers ?? availableParallelism();
    const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isSafeInteger(workers) || workers < 0) throw new RangeError('workers must be >= 0');
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError('maxBatch must be >= 1');
    const pool = new VerifyPool();
    if (workers === 0) return pool;
    pool.maxBatch = maxBatch;
    pool.closed = false;
    pool.workerCount = workers;
    pool.stageBuffer = new ArrayBuffer(workers * maxBatch * TRIPLE_BYTES);
    pool.stage = Buffer.from(pool.stageBuffer);
    const started: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) {
      const slot: Slot = {
        index: i,
        worker: undefined,
        batches: new Map(),
        inFlight: 0,
        failedStarts: 0,
        ready: false,
        respawnTimer: undefined,
      };
      pool.slots.push(slot);
      started.push(pool.spawn(slot));
    }
    try {
      await Promise.all(started);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Worker threads verifying (0 when inline). */
  get size(): number {
    return this.closed ? 0 : this.workerCount;
  }

  /**
   * Whether `signatureHex` (128 lowercase hex) is a valid BIP340 signature of the 32-byte `digest`
   * by `xOnlyHex` (64 lowercase hex). Rejects only when the digest is not 32 bytes, or the worker
   * verifying it died.
   */
  verify(digest: Uint8Array, xOnlyHex: string, signatureHex: string): Promise<boolean> {
    if (digest.length !== 32) return Promise.reject(new RangeError('the digest must be 32 bytes'));
    if (this.closed) {
      try {
        return Promise.resolve(schnorrVerify(digest, xOnlyHex, signatureHex));
      } catch {
        return Promise.resolve(false); // schnorrVerify answers false itself; a throw is not verified either
      }
    }
    if (!HEX64.test(xOnlyHex) || !HEX128.test(signatureHex)) return Promise.resolve(false);
    const at = this.staged.length * TRIPLE_BYTES;
    this.stage.set(digest, at);
    this.stage.write(xOnlyHex, at + 32, 32, 'hex');
    this.stage.write(signatureHex, at + 64, 64, 'hex');
    const answer = new Promise<boolean>((resolve, reject) => this.staged.push({ resolve, reject }));
    if (this.staged.length * TRIPLE_BYTES === this.stage.length) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return answer;
  }

  /**
   * Sends what is queued, waits for every answer, then stops the workers. Verifications asked
   * after this are done inline.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.inFlight() > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await Promise.all(
      this.slots.map(async (slot) => {
        clearTimeout(slot.respawnTimer);
        const w = slot.worker;
        slot.worker = undefined;
        if (w) await w.terminate();
      }),
    );
  }

  private inFlight(): number {
    let n = 0;
    for (const s of this.slots) n += s.inFlight;
    return n;
  }

  /** Sends the staged triples: split evenly over the live workers, each part to the least loaded. */
  private flush(): void {
    const n = this.staged.length;
    if (n === 0) return;
    const waiters = this.staged.splice(0, n);
    const live = this.slots.filter((s) => s.worker !== undefined);
    if (live.length === 0) {
      // Every worker is down and waiting to be restarted: answer on this thread meanwhile.
      for (let i = 0; i < n; i++) {
        const o = i * TRIPLE_BYTES;
        this.verifyInline(this.stage.subarray(o, o + TRIPLE_BYTES), waiters[i] as Waiter);
      }
      return;
    }
    const per = Math.min(this.maxBatch, Math.ceil(n / live.length));
    for (let from = 0; from < n; from += per) {
      const to = Math.min(n, from + per);
      let slot = live[0] as Slot;
      for (const s of live) if (s.inFlight < slot.inFlight) slot = s;
      const data = this.stageBuffer.slice(from * TRIPLE_BYTES, to * TRIPLE_BYTES); // a copy, transferred
      const id = this.nextBatchId++;
      if (slot.inFlight === 0) slot.worker?.ref();
      slot.batches.set(id, waiters.slice(from, to));
      slot.inFlight += to - from;
      const batch: VerifyBatch = { id, n: to - from, data };
      slot.worker?.postMessage(batch, [data]);
    }
  }

  private verifyInline(triple: Buffer, waiter: Waiter): void {
    let ok = false;
    try {
      ok = schnorrVerify(
        triple.subarray(0, 32),
        triple.toString('hex', 32, 64),
        triple.toString('hex', 64, TRIPLE_BYTES),
      );
    } catch {
      // r or s >= n: not verified
    }
    waiter.resolve(ok);
  }

  /** Starts the slot's worker; resolves when it is ready, rejects if it dies first. */
  private spawn(slot: Slot): Promise<void> {
    const { script, options } = workerEntry();
    const worker = new Worker(script, options);
    slot.worker = worker;
    slot.ready = false;
    let failure: Error | undefined;
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (msg: VerifyWorkerMessage) => {
        if (msg.type === 'ready') {
          slot.ready = true;
          slot.failedStarts = 0;
          if (slot.inFlight === 0) worker.unref();
          resolve();
          return;
        }
        const waiters = slot.batches.get(msg.id);
        if (!waiters) return;
        slot.batches.delete(msg.id);
        slot.inFlight -= waiters.length;
        const ok = new Uint8Array(msg.ok);
        for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter).resolve(ok[i] === 1);
        this.settled(slot);
      });
      worker.on('error', (err) => (failure = err));
      worker.on('exit', (code) => {
        if (slot.worker !== worker) return; // terminated by close()
        slot.worker = undefined;
        const reason = failure ? `${failure.name}: ${failure.message}` : `exit code ${code}`;
        const err = new Error(
          `signature verification worker ${slot.index} died (${reason}); ` +
            `its ${slot.inFlight} pending verification(s) were not answered`,
        );
        for (const waiters of slot.batches.values()) for (const w of waiters) w.reject(err);
        slot.batches.clear();
        slot.inFlight = 0;
        reject(err); // a no-op once ready
        if (!slot.ready) slot.failedStarts++;
        this.settled(slot);
        if (this.closed) return;
        // Respawn at once after a crash; back off while new workers keep dying before they start.
        const delay = slot.failedStarts === 0 ? 0 : Math.min(5_000, 100 * 2 ** (slot.failedStarts - 1));
        slot.respawnTimer = setTimeout(() => {
          slot.respawnTimer = undefined;
          if (!this.closed) this.spawn(slot).catch(() => undefined); // its exit handler respawns again
        }, delay);
        slot.respawnTimer.unref();
      });
    });
  }

  private settled(slot: Slot): void {
    if (slot.inFlight === 0) slot.worker?.unref();
    if (this.idle.length > 0 && this.inFlight() === 0) for (const wake of this.idle.splice(0)) wake();
  }
}

/**
 * How to start the worker, whose file is next to this module. Compiled (dist/): `verify-worker.js`.
 * From source (tsx, vitest): `verify-worker.ts`, which Node 20 does not load as a worker's entry
 * even with `--import tsx` in the worker's execArgv ("Unknown file extension .ts": nodejs/node#47747,
 * privatenumber/tsx#354), so a small bootstrap registers tsx's loader in the worker first, then
 * imports the .ts file.
 */
function workerEntry(): { script: string | URL; options: WorkerOptions } {
  if (!import.meta.url.endsWith('.ts'))
    return { script: new URL('./verify-worker.js', import.meta.url), options: {} };
  const worker = new URL('./verify-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api'); // the ESM build (its CJS build fails to register)
  const script = `import(${JSON.stringify(tsx)}).then((m) => m.register()).then(() => import(${JSON.stringify(worker)}));`;
  return { script, options: { eval: true } };
}
