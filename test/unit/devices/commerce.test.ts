import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { paymentHashOf } from '../../../src/domain/hex.js';
import { DeviceCommerce } from '../../../src/devices/commerce.js';
import { xOnlyOf, type RequestEnvelope } from '../../../src/devices/envelope.js';
import { DeviceEvents } from '../../../src/devices/events.js';
import { DeviceRegistry } from '../../../src/devices/registry.js';
import type { Device } from '../../../src/devices/types.js';
import { EscrowService } from '../../../src/escrow/service.js';
import { StreamReceiver, StreamsService } from '../../../src/streams/index.js';
import { paymentsFixture } from '../../support/payments-fixture.js';

const log = pino({ level: 'silent' });
const DEVICE = xOnlyOf('77'.repeat(32));
const request = {} as RequestEnvelope;

/** Device commerce over one ledger; `open` builds it again from what is on disk (a restart). */
async function fixture() {
  const clock = { now: Date.now() };
  const f = await paymentsFixture();
  await f.account('sensor', 0n);
  const publish = (id: string, e: Parameters<typeof f.events.publish>[1]) => f.events.publish(id, e);
  const escrow = new EscrowService(f.ledger, f.lightning, f.service, publish, log, { blockPollMs: 3600_000 });
  await escrow.start();
  const receiver = new StreamReceiver({ ledger: f.ledger, nodeId: () => f.service.nodeId, publish, log });
  const streams = new StreamsService({
    ledger: f.ledger,
    payments: f.service,
    publish,
    log,
    inboxes: receiver,
  });
  const open = async () => {
    const registry = new DeviceRegistry(f.ledger);
    await registry.load();
    const events = new DeviceEvents(registry, f.ledger, '88'.repeat(32), log);
    await events.start(3600_000);
    const commerce = new DeviceCommerce({
      ledger: f.ledger,
      payments: f.service,
      escrow,
      streams,
      registry,
      events,
      bus: f.events,
      log,
      now: () => clock.now,
    });
    await commerce.start();
    // Each method called as the bridge calls it: its params checked, then run for the device.
    const ops = Object.fromEntries(
      Object.entries(commerce.operations()).map(([m, op]) => [
        m,
        async (device: Device, params: Record<string, unknown>, req: RequestEnvelope) =>
          op(params)(device, req),
      ]),
    );
    return { registry, events, commerce, ops };
  };
  const first = await open();
  await first.registry.register({ deviceId: DEVICE, accountId: 'sensor', name: 's' });
  return { f, escrow, first, open, clock };
}

/** A buyer pays a sale's invoice: LND's settlement reaches the payments service. */
async function buy(f: Awaited<ReturnType<typeof fixture>>['f'], paymentHash: string): Promise<string> {
  const invoice = f.lightning.settle(paymentHash);
  await f.service.onInvoice(invoice);
  return f.lightning.invoices.get(paymentHash)!.preimage!;
}

describe('device commerce records', () => {
  it('sells, delivers, and after a restart still serves the reading and finishes a sale in progress', async () => {
    const { f, escrow, first, open } = await fixture();
    const device = first.registry.get(DEVICE)!;
    const sell = first.ops['offer.sell']!;
    const a = (await sell(device, { priceMsat: '1000', description: 'a' }, request)) as {
      paymentHash: string;
    };
    const b = (await sell(device, { priceMsat: '1000', description: 'b' }, request)) as {
      paymentHash: string;
    };
    const preimageA = await buy(f, a.paymentHash);
    await expect
      .poll(async () => (await first.commerce.readSale(a.paymentHash, preimageA)).state)
      .toBe('sold');
    await first.ops['sale.deliver']!(device, { paymentHash: a.paymentHash, reading: '21.5C' }, request);
    first.commerce.stop();
    first.events.stop();

    const again = await open();
    // The delivered sale is read from disk; the offered one is open and completes normally.
    expect(await again.commerce.readSale(a.paymentHash, preimageA)).toEqual({
      state: 'delivered',
      reading: '21.5C',
    });
    const preimageB = await buy(f, b.paymentHash);
    await expect
      .poll(async () => (await again.commerce.readSale(b.paymentHash, preimageB)).state)
      .toBe('sold');
    await again.ops['sale.deliver']!(device, { paymentHash: b.paymentHash, reading: '22.0C' }, request);
    expect(await again.commerce.readSale(b.paymentHash, preimageB)).toEqual({
      state: 'delivered',
      reading: '22.0C',
    });
    await expect(
      again.commerce.readSale(b.paymentHash, paymentHashOf(randomBytes(32).toString('hex'))),
    ).rejects.toMatchObject({
      code: 'SALE_NOT_FOUND',
    });
    expect(await again.commerce.getActuation('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    again.commerce.stop();
    again.events.stop();
    escrow.stop();
    f.service.stop();
  });

  it('closes offers whose invoice expired unpaid; they cannot be delivered any more', async () => {
    const { f, escrow, first, clock } = await fixture();
    const device = first.registry.get(DEVICE)!;
    const offer = (await first.ops['offer.sell']!(device, { priceMsat: '1000' }, request)) as {
      paymentHash: string;
    };
    const preimage = f.lightning.invoices.get(offer.paymentHash)!.preimage!;
    await first.commerce.expireOffers();
    expect((await first.commerce.readSale(offer.paymentHash, preimage)).state).toBe('offered');
    clock.now += 2 * 24 * 3600_000;
    await first.commerce.expireOffers();
    // Past its expiry, but LND has not said the invoice is canceled: it may still turn out paid.
    expect((await first.commerce.readSale(offer.paymentHash, preimage)).state).toBe('offered');
    const invoice = await f.lightning.lookupInvoice(offer.paymentHash);
    await f.service.onInvoice({ ...invoice, state: 'canceled' });
    await first.commerce.expireOffers();
    expect((await first.commerce.readSale(offer.paymentHash, preimage)).state).toBe('expired');
    await expect(
      first.ops['sale.deliver']!(device, { paymentHash: offer.paymentHash, reading: 'x' }, request),
    ).rejects.toMatchObject({ code: 'SALE_EXPIRED' });
    first.commerce.stop();
    first.events.stop();
    escrow.stop();
    f.service.stop();
  });

  it('catches up a sale paid while it was not listening instead of expiring it', async () => {
    const { f, escrow, first, open, clock } = await fixture();
    const device = first.registry.get(DEVICE)!;
    const offer = (await first.ops['offer.sell']!(device, { priceMsat: '1000' }, request)) as {
      paymentHash: string;
    };
    first.commerce.stop(); // the gateway goes down; the payment is booked without commerce listening
    first.events.stop();
    const preimage = await buy(f, offer.paymentHash);
    clock.now += 2 * 24 * 3600_000; // long past the invoice's expiry
    const again = await open();
    expect((await again.commerce.readSale(offer.paymentHash, preimage)).state).toBe('sold');
    const told = again.registry.get(DEVICE)!.lastEventSeq;
    expect(told).toBeGreaterThan(0); // the device was told
    // Another restart: a paid sale not yet delivered is announced again (its event may be gone).
    again.commerce.stop();
    again.events.stop();
    const third = await open();
    expect(third.registry.get(DEVICE)!.lastEventSeq).toBe(told + 1);
    third.commerce.stop();
    third.events.stop();
    await again.ops['sale.deliver']!(device, { paymentHash: offer.paymentHash, reading: '1' }, request);
    expect(await again.commerce.readSale(offer.paymentHash, preimage)).toEqual({
      state: 'delivered',
      reading: '1',
    });
    again.commerce.stop();
    again.events.stop();
    escrow.stop();
    f.service.stop();
  });
});
