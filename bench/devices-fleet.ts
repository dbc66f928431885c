/**
 * Devices at scale, against the real gateway process on its own regtest network:
 *  - N simulated devices (default 10,000) connected over MQTT to the embedded broker, each making a
 *    signed `balance` request: the gateway's RSS before and after (goal: <= 300 MB);
 *  - p50/p99 latency of a device `pay` settled internally (a device pays another account's
 *    invoice) over MQTT, next to the same payment through the HTTP API with the operator key.
 *
 *   npm run bench:devices [-- --devices 10000 --payments 1000 --concurrency 25 --keep]
 *
 * Devices sign with @noble/secp256k1, as a constrained client's library would.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as noble from '@noble/secp256k1';
import { VirtualDevice } from '../src/devices/simulator/virtual-device.js';
import { benchNetwork, runBench } from './support.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    payments: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '25' },
    keep: { type: 'boolean', default: false },
    /** Node flags of the gateway process, as in NODE_OPTIONS (none by default, as npm start). */
    'node-flags': { type: 'string', default: '' },
  },
});
const N = Number(values.devices);
const PAYMENTS = Number(values.payments);
const C = Number(values.concurrency);
const OPERATOR = randomBytes(24).toString('hex');
const MQTT_PORT = 27950;
const network = benchNetwork();
let gateway: ChildProcess | undefined;

const rssMb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
};
const pct = (xs: number[], p: number): number =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function pool<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function main(): Promise<void> {
  // The gateway runs as `npm start` runs it: compiled, not through the TypeScript loader.
  execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
  const status = await network.up();
  const alice = status.nodes.find((n) => n.name === 'alice')!;
  let out = '';
  gateway = spawn(
    process.execPath,
    [
      ...values['node-flags']!.split(' ').filter((f) => f.length > 0),
      'dist/cli/index.js',
      'start',
      '--port',
      '0',
      '--data-dir',
      mkdtempSync(join(tmpdir(), 'coulomb-bench-fleet-')),
      '--lnd-socket',
      alice.grpcSocket,
      '--lnd-cert',
      alice.tlsCert,
      '--lnd-macaroon',
      alice.adminMacaroon,
    ],
    {
      env: {
        ...process.env,
        COULOMB_OPERATOR_KEY: OPERATOR,
        COULOMB_LOG_LEVEL: 'error',
        COULOMB_PROXY_PORT: '0',
        COULOMB_SAMPLE_UPSTREAM_PORT: '0',
        COULOMB_MQTT_PORT: String(MQTT_PORT),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  gateway.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  gateway.stderr!.on('data', (c: Buffer) => process.stderr.write(c));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(m[1]!);
      }
    }, 200);
    gateway!.once('exit', () => reject(new Error(`gateway exited:\n${out}`)));
  });
  const api = async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${OPERATOR}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const gatewayId = (await api('GET', '/v1/device/gateway'))['gatewayId'] as string;
  await api('POST', '/v1/accounts', { id: 'fleet', kind: 'device', name: 'fleet', tier: 'L3' });
  await api('POST', '/v1/accounts', { id: 'shop', kind: 'service', name: 'shop' });
  await api('POST', '/v1/accounts/fleet/fund', { amountMsat: String(10n ** 12n) });

  const devices = Array.from(
    { length: N },
    () => new VirtualDevice(noble.utils.randomSecretKey(), gatewayId),
  );
  const t0 = Date.now();
  await pool(devices, 32, async (d, i) => {
    await api('POST', '/v1/devices', { deviceId: d.id, accountId: 'fleet', name: `sim-${i}` });
  });
  console.error(`registered ${N} devices in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const rssBefore = rssMb(gateway.pid!);
  const t1 = Date.now();
  await pool(devices, 200, async (d) => {
    await d.connect(`mqtt://127.0.0.1:${MQTT_PORT}`);
    const r = await d.call('balance', '');
    if (!r.ok) throw new Error(`balance refused: ${r.b}`);
  });
  console.error(`connected ${N} devices and answered each in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 3000));
  const rssAfter = rssMb(gateway.pid!);

  // Internal payments: devices pay the shop's invoices over MQTT; baseline the HTTP API.
  const invoices = async (n: number): Promise<string[]> => {
    const list: string[] = [];
    await pool(Array.from({ length: n }), 8, async () => {
      list.push(
        (await api('POST', '/v1/accounts/shop/invoices', { amountMsat: '1000' }))['request'] as string,
      );
    });
    return list;
  };
  const mqttLat: number[] = [];
  const payers = devices.slice(0, C);
  const forDevices = await invoices(PAYMENTS);
  // Requests are signed before the clock starts: what is timed is the gateway and the MQTT path
  // (the simulator's pure-JS signing would otherwise queue behind itself).
  const signed = await Promise.all(
    forDevices.map(async (request, i) => {
      const d = payers[i % payers.length]!;
      const c = ++d.counter;
      return { d, c, envelope: await d.sign('pay', { invoice: request }, c) };
    }),
  );
  const queues = payers.map((d) => signed.filter((x) => x.d === d));
  await Promise.all(
    queues.map(async (q) => {
      for (const { d, c, envelope } of q) {
        const start = process.hrtime.bigint();
        const r = await d.send(envelope, c);
        mqttLat.push(Number(process.hrtime.bigint() - start) / 1e6);
        if ('error' in r || !r.ok || (JSON.parse(r.b) as { status: string }).status !== 'succeeded')
          throw new Error(`pay failed: ${JSON.stringify(r)}`);
      }
    }),
  );
  const httpLat: number[] = [];
  const forHttp = await invoices(PAYMENTS);
  await pool(forHttp, C, async (request) => {
    const start = process.hrtime.bigint();
    const p = await api('POST', '/v1/accounts/fleet/payments', { request });
    httpLat.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (p['status'] !== 'succeeded') throw new Error(`HTTP pay failed: ${JSON.stringify(p)}`);
  });

  console.log(`devices connected over MQTT: ${N}`);
  console.log(`gateway RSS before devices: ${rssBefore.toFixed(0)} MB`);
  console.log(`gateway RSS with ${N} devices connected: ${rssAfter.toFixed(0)} MB`);
  console.log(`device pay (internal, MQTT, signed) p50: ${pct(mqttLat, 0.5).toFixed(1)} ms`);
  console.log(`device pay (internal, MQTT, signed) p99: ${pct(mqttLat, 0.99).toFixed(1)} ms`);
  console.log(`baseline HTTP API pay (operator key) p50: ${pct(httpLat, 0.5).toFixed(1)} ms`);
  console.log(`baseline HTTP API pay (operator key) p99: ${pct(httpLat, 0.99).toFixed(1)} ms`);
  console.log(`ratio p99 device/HTTP: ${(pct(mqttLat, 0.99) / pct(httpLat, 0.99)).toFixed(2)}`);
  await Promise.all(devices.map((d) => d.close().catch(() => undefined)));
}

runBench(main, network, values.keep!, () => {
  gateway?.kill('SIGTERM');
});
