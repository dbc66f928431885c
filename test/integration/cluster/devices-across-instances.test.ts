import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoice, getInvoice } from 'ln-service';
import postgres, { type Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import type { BridgeReply } from '../../../src/devices/bridge.js';
import type { ResponseEnvelope } from '../../../src/devices/envelope.js';
import { VirtualDevice } from '../../../src/devices/simulator/virtual-device.js';
import { msat } from '../../../src/domain/msat.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { createLogger } from '../../../src/logger.js';
import { openAccounts, type DeviceTransportHandle } from '../../../src/main.js';
import { deviceTransportsOf } from '../../support/device-instances.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { startMosquitto, type RunningMosquitto } from '../../support/mosquitto.js';
import {
  createTestDatabase,
  gatewayDatabase,
  startPostgres,
  type RunningPostgres,
} from '../../support/postgres.js';
import { backendFor, rawLnd } from '../../support/regtest.js';

/**
 * Three gateway instances on one PostgreSQL, one real LND (regtest alice) and one Mosquitto: a
 * device pays carol's invoices with signed requests over MQTT. A request paid through one
 * instance and replayed to the others is refused (REPLAYED), and the same signed payment sent
 * to all three at once is paid once: one ledger debit, one Lightning payment.
 */
type Accounts = Awaited<ReturnType<typeof openAccounts>>;
interface Instance {
  accounts: Accounts;
  transports: DeviceTransportHandle;
  /** The counters of the requests this instance's bridge was handed. */
  handled: number[];
}

const bodyOf = (reply: BridgeReply): { ok: boolean; b: Record<string, unknown> } => {
  if (!('envelope' in reply)) throw new Error(`expected a signed answer, got ${JSON.stringify(reply)}`);
  return { ok: reply.envelope.ok, b: JSON.parse(reply.envelope.b) as Record<string, unknown> };
};

describe('device payments across three instances on regtest (one PostgreSQL, one LND, one Mosquitto)', () => {
  let server: RunningPostgres;
  let mosquitto: RunningMosquitto;
  let url: string;
  let admin: Sql;
  let db: ReturnType<typeof gatewayDatabase>;
  let dataDir: string;
  let device: VirtualDevice;
  const backends: LndBackend[] = [];
  const instances: Instance[] = [];
  const fatal: unknown[] = [];

  const start = async (): Promise<Instance> => {
    const backend = await backendFor('alice');
    backends.push(backend);
    const config = {
      ...DEFAULTS,
      dataDir,
      databaseUrl: url,
      mqtt: { enabled: true, host: '127.0.0.1', port: 0, url: mosquitto.url },
    };
    const accounts = await openAccounts(config, backend, createLogger('silent'), {
      leaderPollMs: 500,
      onFatal: (err) => fatal.push(err),
    });
    const { transports, handled } = await deviceTransportsOf(config, accounts);
    const instance = { accounts, transports, handled };
    instances.push(instance);
    return instance;
  };
  const bridges = () => instances.map((i) => i.accounts.services.devices!.bridge);

  beforeAll(async () => {
    server = await startPostgres({ dir: join(tmpdir(), `coulomb-pg-devices-${process.pid}`) });
    url = await createTestDatabase(server.url, 'devices_cluster');
    admin = postgres(url, { max: 1, onnotice: false });
    db = gatewayDatabase(admin);
    mosquitto = await startMosquitto();
    dataDir = mkdtempSync(join(tmpdir(), 'coulomb-devcluster-'));
    const a = await start();
    const s = a.accounts.services;
    await s.ledger.ensure({ accounts: ['dev-c'] });
    await s.ledger.createAccount({ id: 'dev-c', kind: 'device', name: 'dev-c' }).durable;
    await s.policies.set('dev-c', tierPolicy('L2'));
    await s.ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: 'dev-c',
      amount: msat(50_000_000),
      code: 'funding',
    }).durable;
    await start();
    await start();
    device = VirtualDevice.random(s.devices!.gatewayId);
    await s.devices!.registry.register({ deviceId: device.id, accountId: 'dev-c', name: 'payer' });
    await device.connect(mosquitto.url);
  });
  afterAll(async () => {
    await device?.close();
    for (const i of instances) {
      await i.transports.close().catch(() => undefined);
      await i.accounts.close().catch(() => undefined);
    }
    for (const b of backends) await b.close().catch(() => undefined);
    await admin?.end();
    await server?.stop();
    await mosquitto?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('pays through one instance, and the request replayed to the others is refused (REPLAYED)', async () => {
    const carol = await rawLnd('carol');
    const invoice = await createInvoice({ lnd: carol, mtokens: '10000000', description: 'device, once' });
    const before = await db.balance('dev-c');
    const c = ++device.counter;
    const signed = await device.sign('pay', { invoice: invoice.request }, c);
    const paid = (await device.send(signed, c, 60_000)) as ResponseEnvelope;
    expect(paid.ok).toBe(true);
    const result = JSON.parse(paid.b) as { status: string; feeMsat: string };
    expect(result.status).toBe('succeeded');
    expect((await getInvoice({ lnd: carol, id: invoice.id })).is_confirmed).toBe(true);
    const taker = instances.findIndex((i) => i.handled.length > 0);
    expect(instances.map((i) => i.handled)).toEqual(instances.map((_, k) => (k === taker ? [c] : [])));
    for (const [k, bridge] of bridges().entries()) {
      if (k === taker) continue;
      expect(bodyOf(await bridge.handle(signed))).toMatchObject({ ok: false, b: { code: 'REPLAYED' } });
    }
    const again = (await device.send(signed, c)) as ResponseEnvelope;
    expect(JSON.parse(again.b)).toMatchObject({ code: 'REPLAYED' });
    expect(await db.balance('dev-c')).toBe(before - 10_000_000n - BigInt(result.feeMsat));
    expect(fatal).toEqual([]);
  });

  it('pays once when the same signed payment reaches all three instances at once', async () => {
    const carol = await rawLnd('carol');
    const invoice = await createInvoice({ lnd: carol, mtokens: '7000000', description: 'device, at once' });
    const before = await db.balance('dev-c');
    const c = ++device.counter;
    const signed = await device.sign('pay', { invoice: invoice.request }, c);
    const replies = (await Promise.all(bridges().flatMap((b) => [b.handle(signed), b.handle(signed)]))).map(
      bodyOf,
    );
    const accepted = replies.filter((r) => r.ok);
    expect(accepted).toHaveLength(1);
    expect(replies.filter((r) => !r.ok)).toEqual(
      Array(5).fill({ ok: false, b: expect.objectContaining({ code: 'REPLAYED' }) }),
    );
    expect(accepted[0]!.b).toMatchObject({ status: 'succeeded' });
    expect((await getInvoice({ lnd: carol, id: invoice.id })).is_confirmed).toBe(true);
    expect(await db.balance('dev-c')).toBe(before - 7_000_000n - BigInt(accepted[0]!.b['feeMsat'] as string));
    expect(fatal).toEqual([]);
  });
});
