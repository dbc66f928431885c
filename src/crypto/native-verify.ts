import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** BIP340 verify in native libsecp256k1 (npm run build:native), if it was built. */
export type NativeVerify = (digest: Uint8Array, xOnly: Uint8Array, signature: Uint8Array) => boolean;

function load(): NativeVerify | undefined {
  if (process.env['COULOMB_NATIVE_VERIFY'] === '0') return undefined;
  // src/crypto and dist/crypto are both two levels below the package root.
  const file = fileURLToPath(new URL('../../native/build/schnorr_verify.node', import.meta.url));
  if (!existsSync(file)) return undefined;
  try {
    const addon = createRequire(import.meta.url)(file) as { verify: NativeVerify };
    return (digest, key, sig) => addon.verify(toBuffer(digest), toBuffer(key), toBuffer(sig));
  } catch {
    return undefined;
  }
}

const toBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export const nativeVerify: NativeVerify | undefined = load();
