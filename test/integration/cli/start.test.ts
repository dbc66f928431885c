import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { node } from '../../support/regtest.js';

const operatorKey = 'test-operator-key-0123456789abcdef0123456789';
let child: ChildProcess | undefined;
const children: ChildProcess[] = [];

afterAll(async () => {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        return exited;
      }),
  );
});

/** Runs `coulomb start` as a user would, against the test network (its `up` is idempotent). */
function start(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; output: () => string }> {
  const status = inject('regtest');
  let out = '';
  child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'start', '--port', '0', ...args], {
    env: {
      ...process.env,
      COULOMB_REGTEST_DIR: status.dataDir,
      COULOMB_REGTEST_BASE_PORT: String(status.basePort),
      COULOMB_DATA_DIR: mkdtempSync(join(tmpdir(), 'coulomb-data-')),
      COULOMB_LOG_LEVEL: 'warn',
      COULOMB_PROXY_PORT: '0',
      COULOMB_MQTT_PORT: '0',
      COULOMB_SAMPLE_UPSTREAM_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${out}`)), 120_000);
    const check = (): void => {
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, output: () => out });
      }
    };
    child!.stdout!.on('data', check);
    child!.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${out}`));
    });
  });
}

describe('coulomb start', () => {
  it('brings up the embedded regtest network and serves health and node info', async () => {
    const { url, output } = await start([], { COULOMB_OPERATOR_KEY: operatorKey });
    expect(output()).toContain(`alice  ${node('alice').pubkey}`);
    expect(output()).not.toContain(operatorKey); // a configured key is never echoed

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', lightning: 'connected' });

    expect((await fetch(`${url}/v1/node`)).status).toBe(401);
    const info = await fetch(`${url}/v1/node`, { headers: { authorization: `Bearer ${operatorKey}` } });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({
      pubkey: node('alice').pubkey,
      network: 'regtest',
      syncedToChain: true,
    });

    child!.kill('SIGTERM');
    const code = await new Promise((r) => child!.once('exit', r));
    expect(code).toBe(0);
  });

  it('connects to any LND given by flags, and generates a one-time operator key when none is set', async () => {
    const bob = node('bob');
    const { url, output } = await start([
      '--lnd-socket',
      bob.grpcSocket,
      '--lnd-cert',
      bob.tlsCert,
      '--lnd-macaroon',
      bob.adminMacaroon,
    ]);
    const key = /Operator key[^\n]*\n\s+(cop_[A-Za-z0-9_-]+)/.exec(output())?.[1];
    expect(key).toBeDefined();
    const info = await fetch(`${url}/v1/node`, { headers: { authorization: `Bearer ${key}` } });
    expect(await info.json()).toMatchObject({ pubkey: bob.pubkey });
  });

  it('refuses invalid configuration with a clear message and exit code 1', async () => {
    await expect(start(['--lnd-socket', 'nohostport'])).rejects.toThrow(
      /exited with 1[\s\S]*CONFIG_INVALID[\s\S]*lnd/,
    );
  });
});
