/**
 * Builds native/build/schnorr_verify.node from native/schnorr_verify.c against Node's own headers
 * and the system libsecp256k1. Optional: without it the gateway verifies with tiny-secp256k1.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const headers = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].find((d) =>
  existsSync(join(d, 'node_api.h')),
);
if (!headers) {
  process.stderr.write('build-native: Node-API headers not found; the WASM verifier will be used\n');
  process.exit(1);
}
mkdirSync('native/build', { recursive: true });
execFileSync(
  'cc',
  [
    '-O2',
    '-shared',
    '-fPIC',
    `-I${headers}`,
    'native/schnorr_verify.c',
    '-lsecp256k1',
    '-o',
    'native/build/schnorr_verify.node',
  ],
  { stdio: 'inherit' },
);
process.stdout.write('build-native: native/build/schnorr_verify.node\n');
