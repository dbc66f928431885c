/**
 * The energy market. (1) The matching engine alone: 10,000 resting orders, then a stream of
 * incoming orders (half of them cross and fill, partially or fully, half rest; the book stays
 * near 10,000): orders/s and per-order match latency (p50, p99). Baseline in the same run: the
 * property tests' reference model (one list, filter and sort per order) on the same orders.
 * (2) Energy trades settled per second through metered streams on the real LevelDB ledger: N
 * trades, each delivered by one meter reading, paid by its consumer's metered stream and closed.
 * Baseline in the same run: the same N payments as plain posted `ledger.transfer`s.
 *
 *   npm run bench:energy -- [--resting 10000 --orders 200000 --trades 2000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { msat } from '../src/domain/msat.js';
import { OrderBook, type Side } from '../src/energy/book.js';
import { EnergyMarket } from '../src/energy/market.js';
import { Ledger } from '../src/ledger/ledger.js';
import { OPERATOR_ACCOUNT } from '../src/ledger/system-accounts.js';
import { balanceOf } from '../src/ledger/types.js';
import { EventBus } from '../src/payments/events.js';
import { PaymentsService } from '../src/payments/service.js';
import { AuditLog } from '../src/policy/audit.js';
import { PolicyRegistry } from '../src/policy/registry.js';
import { tierPolicy } from '../src/policy/tiers.js';
import { openDatabase } from '../src/storage/level-db.js';
import { LevelLedgerStore } from '../src/storage/level-ledger-store.js';
import { StreamsService } from '../src/streams/service.js';
import { Reference } from '../test/support/energy-reference.js';
import { FakeLightning } from '../test/support/fake-lightning.js';

const { values } = parseArgs({
  options: {
    resting: { type: 'string', default: '10000' },
    orders: { type: 'string', default: '200000' },
    'reference-orders': { type: 'string', default: '5000' },
    trades: { type: 'string', default: '2000' },
  },
});
const RESTING = Number(values.resting);
const ORDERS = Number(values.orders);
const REF_ORDERS = Number(values['reference-orders']);
const TRADES = Number(values.trades);
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

const pct = (xs: Float64Array, p: number): number => {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** A deterministic stream of orders around a mid price of 50,000 msat/kWh. */
function orders(n: number, seed: number): { side: Side; price: bigint; quantity: bigint }[] {
  let x = seed;
  const rnd = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  return Array.from({ length: n }, (_, i) => {
    const side: Side = rnd() < 0.5 ? 'bid' : 'offer';
    const cross = i % 2 === 0; // half cross the spread, half rest behind it
    const offset = BigInt(Math.floor(rnd() * 500));
    const price =
      side === 'bid'
        ? cross
          ? 50_250n + offset
          : 49_750n - offset
        : cross
          ? 49_750n - offset
          : 50_250n + offset;
    // Crossing orders are larger on average: they take about what the resting ones add.
    return { side, price, quantity: BigInt(1 + Math.floor(rnd() * (cross ? 2600 : 1000))) };
  });
}

function seedBook(book: OrderBook, n: number): void {
  for (let i = 0; i < n; i++) {
    const side: Side = i % 2 === 0 ? 'bid' : 'offer';
    const price = side === 'bid' ? 49_999n - BigInt(i % 2000) : 50_001n + BigInt(i % 2000);
    book.submit({ id: `r${i}`, side, price, remaining: 500n, seq: i });
  }
}

function matching(): void {
  const input = orders(ORDERS, 7);
  // Throughput: the orders back to back.
  const book = new OrderBook();
  seedBook(book, RESTING);
  let fills = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ORDERS; i++) {
    const o = input[i]!;
    fills += book.submit({
      id: `o${i}`,
      side: o.side,
      price: o.price,
      remaining: o.quantity,
      seq: RESTING + i,
    }).length;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  // Latency: the same orders on a fresh book, each one timed.
  const timed = new OrderBook();
  seedBook(timed, RESTING);
  const lat = new Float64Array(ORDERS);
  for (let i = 0; i < ORDERS; i++) {
    const o = input[i]!;
    const s = process.hrtime.bigint();
    timed.submit({ id: `o${i}`, side: o.side, price: o.price, remaining: o.quantity, seq: RESTING + i });
    lat[i] = Number(process.hrtime.bigint() - s) / 1000;
  }
  const rate = ORDERS / secs;
  const ref = new Reference();
  for (let i = 0; i < RESTING; i++) {
    const side: Side = i % 2 === 0 ? 'bid' : 'offer';
    const price = side === 'bid' ? 49_999n - BigInt(i % 2000) : 50_001n + BigInt(i % 2000);
    ref.submit({ id: `r${i}`, side, price, quantity: 500n, seq: i });
  }
  const r0 = process.hrtime.bigint();
  for (let i = 0; i < REF_ORDERS; i++) {
    const o = input[i]!;
    ref.submit({ id: `o${i}`, side: o.side, price: o.price, quantity: o.quantity, seq: RESTING + i });
  }
  const refRate = REF_ORDERS / (Number(process.hrtime.bigint() - r0) / 1e9);
  console.log(
    `matching engine: ${RESTING} resting, ${ORDERS} incoming orders, ${fills} fills, book ends at ${book.size}`,
  );
  console.log(`  orders/s            ${Math.round(rate).toLocaleString('en')} (goal ≥ 50,000)`);
  console.log(`  match latency p50   ${pct(lat, 50).toFixed(2)} µs, p99 ${pct(lat, 99).toFixed(2)} µs`);
  console.log(
    `  baseline (reference model, ${REF_ORDERS} orders): ${Math.round(refRate).toLocaleString('en')} orders/s; ratio ${(rate / refRate).toFixed(1)}`,
  );
}

async function settlement(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-bench-energy-'));
  const db = await openDatabase(dir);
  const ledger = await Ledger.open(new LevelLedgerStore(db));
  const policies = new PolicyRegistry(ledger, { keep: (id) => ledger.hasPending(id) });
  const bus = new EventBus();
  const payments = new PaymentsService(
    ledger,
    new FakeLightning(),
    policies,
    new AuditLog(ledger),
    bus,
    silent,
    {
      reconcileIntervalMs: 3600_000,
    },
  );
  await payments.start();
  const consumers = Array.from({ length: TRADES }, (_, i) => `c${i}`);
  const producers = Array.from({ length: 100 }, (_, i) => `p${i}`);
  for (const id of [...consumers, ...producers, 'base-payer', 'base-payee'])
    ledger.createAccount({ id, kind: 'agent', name: id });
  for (const id of [...consumers, 'base-payer'])
    ledger.transfer({
      debitAccountId: OPERATOR_ACCOUNT,
      creditAccountId: id,
      amount: msat(10n ** 9n),
      code: 'funding',
    });
  await Promise.all([...consumers, ...producers].map((id) => policies.set(id, tierPolicy('L3'))));
  await ledger.flush();
  const streams = new StreamsService({
    ledger,
    payments,
    publish: (id, e) => bus.publish(id, { ...e }),
    log: silent,
  });
  await streams.start();
  const market = new EnergyMarket({
    ledger,
    streams,
    bus,
    publish: (id, e) => bus.publish(id, e),
    deviceOf: () => undefined,
    log: silent,
    options: { sweepMs: 3600_000 },
  });
  await market.start();
  const start = Math.ceil(Date.now() / 900_000) * 900_000 + 900_000;
  const product = { zone: 'bench', windowStart: start, windowEnd: start + 900_000 };
  const tradeIds: string[] = [];
  for (let i = 0; i < TRADES; i++) {
    await market.submit(producers[i % producers.length]!, {
      side: 'offer',
      ...product,
      quantityWh: 1000n,
      priceMsatPerKWh: msat(50_001),
    });
    const { trades } = await market.submit(consumers[i]!, {
      side: 'bid',
      ...product,
      quantityWh: 1000n,
      priceMsatPerKWh: msat(50_001),
    });
    tradeIds.push(trades[0]!.id);
  }
  for (;;) {
    const t = await market.getTrade(tradeIds[tradeIds.length - 1]!);
    if (t.state === 'delivering') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const t0 = process.hrtime.bigint();
  await Promise.all(tradeIds.map((id) => market.report(id, 'producer', 0, 1000n)));
  await ledger.flush();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  let completed = 0;
  let paid = 0n;
  for (const id of tradeIds) {
    const t = await market.getTrade(id);
    if (t.state === 'completed') completed += 1;
    paid += t.paidMsat;
  }
  const received = producers.reduce((s, id) => s + balanceOf(ledger.accountNow(id)!), 0n);
  const b0 = process.hrtime.bigint();
  await Promise.all(
    tradeIds.map(
      () =>
        ledger.transfer({
          debitAccountId: 'base-payer',
          creditAccountId: 'base-payee',
          amount: msat(50_001),
          code: 'transfer',
        }).durable,
    ),
  );
  const baseSecs = Number(process.hrtime.bigint() - b0) / 1e9;
  const rate = TRADES / secs;
  const baseRate = TRADES / baseSecs;
  console.log(`energy trades settled through metered streams (LevelDB, fsync per batch): ${TRADES} trades`);
  console.log(
    `  trades settled/s    ${Math.round(rate).toLocaleString('en')} (${completed} completed; paid ${paid} msat, producers received ${received}, expected ${BigInt(TRADES) * 50_001n})`,
  );
  console.log(
    `  baseline (plain posted transfers): ${Math.round(baseRate).toLocaleString('en')}/s; ratio ${(rate / baseRate).toFixed(2)}`,
  );
  market.stop();
  await streams.stop();
  payments.stop();
  await ledger.close();
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}

matching();
await settlement();
process.exit(0);
