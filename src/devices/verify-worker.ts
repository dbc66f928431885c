import { parentPort } from 'node:worker_threads';
import * as ecc from 'tiny-secp256k1';
import { nativeVerify } from '../crypto/native-verify.js';

// The worker side of VerifyPool (verify-pool.ts): BIP340 verification with the native
// libsecp256k1 addon when it was built (`npm run build:native`) and not turned off with
// COULOMB_NATIVE_VERIFY=0, else with tiny-secp256k1 (libsecp256k1 in WASM, one instance per
// worker). Started by the pool only, never imported.

/** Bytes per triple in a batch: digest[32] ‖ x-only public key[32] ‖ signature[64]. */
const TRIPLE_BYTES = 128;

/** Main thread → worker: `n` triples packed back to back in `data` (transferred). */
export interface VerifyBatch {
  id: number;
  n: number;
  data: ArrayBuffer;
}

/** Worker → main thread. `ok` holds one byte per triple, 1 when the signature verifies. */
export type VerifyWorkerMessage = { type: 'ready' } | { type: 'result'; id: number; ok: ArrayBuffer };

const port = parentPort;
if (!port) throw new Error('verify-worker runs in a worker thread started by VerifyPool');

// The secp256k1 group order: tiny-secp256k1 throws (in JS, before the WASM call) for r or s >= n.
const N = Uint8Array.from(
  Buffer.from('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141', 'hex'),
);
function belowN(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 32; i++) {
    const x = b[at + i] as number;
    const y = N[i] as number;
    if (x !== y) return x < y;
  }
  return false;
}

// x-only keys known to be on the curve (only the WASM verifier needs the check). A key that is
// not makes libsecp256k1's verify throw *through* the WASM frames, which leaks its shadow stack: after ~3,400 such throws the instance
// is broken for good ("memory access out of bounds" on every call). So keys are checked first —
// isXOnlyPoint is a square root (~30 µs, ~11% of a verify), hence the cache of keys seen valid
// (devices sign many requests with one key). Cleared when full.
const MAX_KNOWN_KEYS = 65_536;
const knownKeys = new Set<string>();

function validKey(bytes: Uint8Array, at: number): boolean {
  const id = Buffer.from(bytes.buffer, bytes.byteOffset + at, 32).toString('latin1');
  if (knownKeys.has(id)) return true;
  // The native verifier parses keys safely itself; the WASM one must never see an off-curve key.
  if (nativeVerify === undefined && !ecc.isXOnlyPoint(bytes.subarray(at, at + 32))) return false;
  if (knownKeys.size >= MAX_KNOWN_KEYS) knownKeys.clear();
  knownKeys.add(id);
  return true;
}

port.on('message', (batch: VerifyBatch) => {
  const bytes = new Uint8Array(batch.data);
  const ok = new Uint8Array(batch.n);
  let unexpected = false;
  for (let i = 0, o = 0; i < batch.n; i++, o += TRIPLE_BYTES) {
    if (!belowN(bytes, o + 64) || !belowN(bytes, o + 96) || !validKey(bytes, o + 32)) continue; // 0
    try {
      ok[i] = (nativeVerify ?? ecc.verifySchnorr)(
        bytes.subarray(o, o + 32),
        bytes.subarray(o + 32, o + 64),
        bytes.subarray(o + 64, o + TRIPLE_BYTES),
      )
        ? 1
        : 0;
    } catch {
      unexpected = true; // answered as not verified; see below
    }
  }
  const reply: VerifyWorkerMessage = { type: 'result', id: batch.id, ok: ok.buffer };
  port.postMessage(reply, [ok.buffer]);
  // Nothing above should throw; if something did, it may have gone through the WASM frames (see
  // knownKeys), so this instance is retired: the pool answers the batch, then starts a fresh worker.
  if (unexpected) process.exit(70);
});

const ready: VerifyWorkerMessage = { type: 'ready' };
port.postMessage(ready);
