import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceBridge } from '../../../src/devices/bridge.js';
import {
  requestDigest,
  schnorrSign,
  schnorrVerify,
  xOnlyOf,
  type RequestEnvelope,
} from '../../../src/devices/envelope.js';
import { accountOperations } from '../../../src/devices/operations.js';
import { parseRequest } from '../../../src/devices/parse.js';
import { DeviceRegistry } from '../../../src/devices/registry.js';
import { paymentsFixture, silentLog } from '../../support/payments-fixture.js';

// The C library's documented signing path draws BIP340 aux randomness from the platform hook
// (aux32 = NULL; on a host getrandom()) and, with that synthetic nonce, does not verify its own
// signature: the gateway must accept what it makes. The host CLI signs exactly that way.
const run = promisify(execFile);
const BUILD = 'firmware-bridge/build';
const CLI = `${BUILD}/coulomb_device_cli`;
const GATEWAY = '66'.repeat(32);
const DEVICE = '77'.repeat(32);

let server: Server;
let url: string;
const received: RequestEnvelope[] = [];

beforeAll(async () => {
  // npm test builds it first (test:firmware); build (or bring up to date) the host CLI if run alone.
  if (!existsSync(`${BUILD}/CMakeCache.txt`)) await run('cmake', ['-S', 'firmware-bridge', '-B', BUILD]);
  await run('cmake', ['--build', BUILD, '--target', 'coulomb_device_cli']);

  const f = await paymentsFixture({ now: () => Date.now() });
  await f.account('c-device', 1_000_000n);
  const registry = new DeviceRegistry(f.ledger, () => Date.now());
  await registry.load();
  await registry.register({ deviceId: xOnlyOf(DEVICE), accountId: 'c-device', name: 'c device' });
  const bridge = new DeviceBridge(
    registry,
    f.ledger,
    GATEWAY,
    accountOperations({ ledger: f.ledger, payments: f.service }),
    silentLog,
    { now: () => Date.now() },
  );
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      received.push(parseRequest(raw));
      void bridge.handle(raw).then((reply) => {
        res.writeHead(reply.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify('envelope' in reply ? reply.envelope : reply.error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

const cli = (counter: number) => run(CLI, [url, DEVICE, xOnlyOf(GATEWAY), String(counter), 'balance', '']);

describe('the C library signing with fresh platform randomness', () => {
  it('makes signatures the gateway accepts, each with its own nonce', async () => {
    const first = await cli(1);
    const second = await cli(2);
    // The bridge verified both signatures and answered with the account's balance.
    expect(JSON.parse(first.stdout)).toMatchObject({ balanceMsat: '1000000' });
    expect(JSON.parse(second.stdout)).toMatchObject({ balanceMsat: '1000000' });

    expect(received).toHaveLength(2);
    for (const e of received) {
      const { s, ...unsigned } = e;
      expect(e.d).toBe(xOnlyOf(DEVICE));
      expect(schnorrVerify(requestDigest(unsigned), e.d, s)).toBe(true);
      // Not the signature a missing aux gives (libsecp256k1 treats NULL as 32 zero bytes): the
      // nonce came from fresh randomness.
      expect(s).not.toBe(schnorrSign(requestDigest(unsigned), DEVICE, new Uint8Array(32)));
    }
  });
});
