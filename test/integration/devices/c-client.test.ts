import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createInvoice, getInvoice } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import { xOnlyOf } from '../../../src/crypto/bip340.js';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts } from '../../../src/main.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, rawLnd } from '../../support/regtest.js';

const run = promisify(execFile);
const CLI = 'firmware-bridge/build/coulomb_device_cli';
const DEVICE_KEY = 'a1'.repeat(32);
let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let app: CoulombApp;
let url: string;

beforeAll(async () => {
  // npm test builds the C library and its host client first (test:firmware); build it if run alone.
  if (!existsSync(CLI)) {
    await run('cmake', ['-S', 'firmware-bridge', '-B', 'firmware-bridge/build']);
    await run('cmake', ['--build', 'firmware-bridge/build']);
  }
  backend = await backendFor('alice');
  const config = { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-c-client-')) };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }), { payTimeoutMs: 10_000 });
  app = await buildApp({
    backend,
    operatorAuth: OperatorAuth.fromKey('c'.repeat(40)),
    accounts: stack.services,
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  const s = stack.services;
  await s.ledger.createAccount({ id: 'c-device', kind: 'device', name: 'c-device' }).durable;
  await s.policies.set('c-device', tierPolicy('L2'));
  await s.ledger.transfer({
    debitAccountId: OPERATOR_ACCOUNT,
    creditAccountId: 'c-device',
    amount: msat(50_000_000),
    code: 'funding',
  }).durable;
  await s.devices!.registry.register({
    deviceId: xOnlyOf(DEVICE_KEY),
    accountId: 'c-device',
    name: 'c client',
  });
});
afterAll(async () => {
  await app?.close();
  await stack?.close();
  await backend?.close();
});

async function cli(counter: number, method: string, params: string, key?: string) {
  const args = [
    url,
    DEVICE_KEY,
    stack.services.devices!.gatewayId,
    String(counter),
    method,
    params,
    ...(key ? [key] : []),
  ];
  try {
    const { stdout } = await run(CLI, args);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout, err: e.stderr };
  }
}

describe('the host-built C client against the gateway', () => {
  it('pays carol’s invoice end to end with a signed request, and a replay is refused', async () => {
    const carol = await rawLnd('carol');
    const invoice = await createInvoice({ lnd: carol, mtokens: '10000000', description: 'from a C device' });
    const paid = await cli(1, 'pay', JSON.stringify({ invoice: invoice.request }), 'c-pay-1');
    expect(paid.code).toBe(0);
    expect(JSON.parse(paid.out)).toMatchObject({ status: 'succeeded', amountMsat: '10000000' });
    expect((await getInvoice({ lnd: carol, id: invoice.id })).is_confirmed).toBe(true);
    const fee = BigInt((JSON.parse(paid.out) as { feeMsat: string }).feeMsat);
    expect(balanceOf(await stack.services.ledger.requireAccount('c-device'))).toBe(
      50_000_000n - 10_000_000n - fee,
    );

    const replay = await cli(1, 'balance', '');
    expect(replay.code).toBe(2); // a signed refusal
    expect(JSON.parse(replay.out)).toMatchObject({ code: 'REPLAYED' });
    const balance = await cli(2, 'balance', '');
    expect(balance.code).toBe(0);
    expect(JSON.parse(balance.out)).toMatchObject({ balanceMsat: String(50_000_000n - 10_000_000n - fee) });
  });
});
