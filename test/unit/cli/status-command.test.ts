import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { cliAgainst } from '../../support/cli.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'cli-status-operator-key-0123456789abcdef';
let app: CoulombApp;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;

beforeAll(async () => {
  f = await paymentsFixture();
  app = await accountsApp(f, OP);
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  f.service.stop();
  await app.close();
});

describe('coulomb status', () => {
  it('summarises the gateway from its API: health, node, funds coverage, and the proxy being off', async () => {
    const status = await cliAgainst(() => url, OP)('status', '--json');
    expect(status).toMatchObject({
      health: { status: 'ok', lightning: 'connected' },
      node: { pubkey: expect.any(String) },
      liabilities: { coverage: expect.any(String) },
      proxy: { error: expect.stringContaining('404') },
    });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'src/cli/index.ts', 'status'],
      {
        env: { ...process.env, COULOMB_URL: url, COULOMB_OPERATOR_KEY: OP },
      },
    );
    expect(stdout).toMatch(/^gateway {3}ok \(Lightning connected\)\nnode {6}/);
    expect(stdout).toMatch(/\nfunds {5}owed .* coverage /);
    expect(stdout).toMatch(/\nproxy {5}off or unreachable/);
  }, 60_000);
});
