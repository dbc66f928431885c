import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoulombApp } from '../../../src/http/app.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { cliAgainst } from '../../support/cli.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'cli-operator-key-0123456789abcdef0123';
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

const run = promisify(execFile);
const coulomb = cliAgainst(() => url, OP);

describe('coulomb CLI', () => {
  it('creates an account, funds it, pays, and shows balance and history', async () => {
    expect(await coulomb('account', 'create', 'robot', '--id', 'cli-bot', '--tier', 'L2')).toMatchObject({
      id: 'cli-bot',
      tier: 'L2',
    });
    expect(await coulomb('account', 'fund', 'cli-bot', '5000000')).toMatchObject({ balanceMsat: '5000000' });
    const paid = await coulomb(
      'pay',
      'cli-bot',
      fakeRequest({ amountMsat: 1_000_000n }).request,
      '--max-fee',
      '2000',
    );
    expect(paid).toMatchObject({ status: 'succeeded', amountMsat: '1000000', feeMsat: '1000' });
    expect(await coulomb('account', 'show', 'cli-bot')).toMatchObject({ balanceMsat: '3999000' });
    const history = (await coulomb('account', 'history', 'cli-bot')).entries as { type: string }[];
    expect(history.map((e) => e.type)).toContain('transfer_posted');
  }, 60_000);

  it('creates an invoice once per idempotency key', async () => {
    await coulomb('account', 'create', 'shop', '--id', 'cli-shop', '--tier', 'L2');
    const args = ['invoice', 'cli-shop', '5000', '--idempotency-key', 'inv-1'];
    const first = await coulomb(...args);
    expect(await coulomb(...args)).toMatchObject({ paymentHash: first.paymentHash });
  }, 60_000);

  it('reports API errors with their code and a non-zero exit', async () => {
    await expect(
      run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'account', 'fund', 'nobody', '5'], {
        env: { ...process.env, COULOMB_URL: url, COULOMB_OPERATOR_KEY: OP },
      }),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('404 ACCOUNT_NOT_FOUND'),
    });
  }, 30_000);

  it('status summarises the gateway from its API: health, node, funds coverage, and the proxy being off', async () => {
    expect(await coulomb('status', '--json')).toMatchObject({
      health: { status: 'ok', lightning: 'connected' },
      node: { pubkey: expect.any(String) },
      liabilities: { coverage: expect.any(String) },
      proxy: { error: expect.stringContaining('404') },
    });
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'status'], {
      env: { ...process.env, COULOMB_URL: url, COULOMB_OPERATOR_KEY: OP },
    });
    expect(stdout).toMatch(/^gateway {3}ok \(Lightning connected\)\nnode {6}/);
    expect(stdout).toMatch(/\nfunds {5}owed .* coverage /);
    expect(stdout).toMatch(/\nproxy {5}off or unreachable/);
  }, 60_000);
});
