import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Binaries {
  btcd: string;
  btcctl: string;
  lnd: string;
  lncli: string;
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the coulomb package root');
    dir = up;
  }
  return dir;
}

/**
 * Finds btcd and lnd: COULOMB_BIN_DIR if set, else the version-keyed cache, building them from
 * their Go modules on first use (regtest/build-nodes.sh shows progress on stderr).
 */
export async function ensureBinaries(): Promise<Binaries> {
  let dir = process.env['COULOMB_BIN_DIR'];
  if (!dir) {
    const script = join(packageRoot(), 'regtest', 'build-nodes.sh');
    dir = await new Promise<string>((resolvePromise, reject) => {
      const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', reject);
      child.on('exit', (code) => {
        const last = out.trim().split('\n').pop() ?? '';
        if (code === 0 && last) resolvePromise(last);
        else reject(new Error(`building btcd/lnd failed (exit ${code}); see the messages above`));
      });
    });
  }
  const bins = {
    btcd: resolve(dir, 'btcd'),
    btcctl: resolve(dir, 'btcctl'),
    lnd: resolve(dir, 'lnd'),
    lncli: resolve(dir, 'lncli'),
  };
  for (const [name, path] of Object.entries(bins)) {
    if (!existsSync(path)) throw new Error(`${name} not found at ${path}`);
  }
  return bins;
}
