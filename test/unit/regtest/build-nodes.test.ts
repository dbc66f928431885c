import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const script = join(process.cwd(), 'regtest', 'build-nodes.sh');

/** Runs the build script with a PATH holding only bash's basics and, optionally, a fake `go`. */
function run(fakeGoVersion?: string): { status: number | null; stderr: string } {
  const bin = mkdtempSync(join(tmpdir(), 'coulomb-path-'));
  for (const tool of ['bash', 'sed', 'tr', 'date', 'mkdir', 'dirname', 'cat']) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (found) spawnSync('ln', ['-s', found, join(bin, tool)]);
  }
  if (fakeGoVersion) {
    writeFileSync(
      join(bin, 'go'),
      `#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo ${fakeGoVersion} && exit 0\nexit 1\n`,
    );
    chmodSync(join(bin, 'go'), 0o755);
  }
  const cache = mkdtempSync(join(tmpdir(), 'coulomb-cache-'));
  mkdirSync(cache, { recursive: true });
  const res = spawnSync(join(bin, 'bash'), [script], {
    env: { PATH: bin, HOME: cache, COULOMB_CACHE: cache },
    encoding: 'utf8',
  });
  return { status: res.status, stderr: res.stderr };
}

describe('regtest/build-nodes.sh', () => {
  it('explains that Go is missing', () => {
    const res = run();
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/Go is not installed.*needs Go >= 1\.25/s);
  });

  it('explains that Go is too old', () => {
    const res = run('go1.22.4');
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('found go1.22.4, but building btcd v0.26.0 needs Go >= 1.25');
  });
});
