import { describe, expect, it } from 'vitest';
import { DeviceCommerce } from '../../../src/devices/commerce.js';
import { xOnlyOf } from '../../../src/devices/envelope.js';
import { msat } from '../../../src/domain/msat.js';
import type { CreateHoldInvoiceArgs, Invoice } from '../../../src/lightning/types.js';
import { fakeBackend } from '../../support/fake-backend.js';
import { featureServices } from '../../support/features-fixture.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const DEVICE = xOnlyOf('79'.repeat(32));
const CAP = 16;
const GATEWAY_KEY = '88'.repeat(32);

/**
 * Device commerce whose escrows get their hold invoices from a backend that answers only after
 * the event loop turned (as LND does): concurrent requests all reach the gap between the cap
 * check and the actuation's record.
 */
async function fixture(createHold: (args: CreateHoldInvoiceArgs) => Promise<Invoice>) {
  const f = await paymentsFixture();
  await f.account('switch', 0n);
  const backend = fakeBackend({
    createHoldInvoice: createHold,
    watchInvoice: () => ({ close: () => undefined }),
  });
  const features = await featureServices(f, { backend, gatewayKey: GATEWAY_KEY });
  await features.devices.register({ deviceId: DEVICE, accountId: 'switch', name: 'switch' });
  const close = async () => {
    await features.stop();
    f.service.stop();
  };
  /** The HTTP app with the device routes over this commerce. */
  const app = () => accountsApp(f, 'op-key', { devices: features.accountServices.devices! });
  return { commerce: features.commerce, close, app };
}

const holdInvoice = (args: CreateHoldInvoiceArgs): Invoice => ({
  paymentHash: args.paymentHash,
  request: `lnbcrthold${args.paymentHash}`,
  description: args.description ?? '',
  amountMsat: args.amountMsat,
  receivedMsat: msat(0),
  state: 'open',
  isKeysend: false,
  createdAt: new Date(),
  expiresAt: new Date(Date.now() + 3600_000),
  cltvDelta: args.cltvDelta ?? 80,
  addIndex: 0,
  settleIndex: 0,
  htlcs: [],
});

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function requestMany(commerce: DeviceCommerce, n: number) {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      commerce.requestActuation(DEVICE, { command: `open ${i}`, priceMsat: msat(5000) }),
    ),
  );
  const created = results.filter((r) => r.status === 'fulfilled');
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  return { created, refused };
}

describe('the open-actuation cap of a device', () => {
  it('creates exactly the cap under 40 concurrent requests; the rest are refused before any hold invoice', async () => {
    let holds = 0;
    const { commerce, close } = await fixture(async (args) => {
      holds += 1;
      await turn();
      return holdInvoice(args);
    });
    const { created, refused } = await requestMany(commerce, 40);
    expect(created).toHaveLength(CAP);
    expect(refused).toHaveLength(40 - CAP);
    for (const err of refused) expect(err).toMatchObject({ code: 'TOO_MANY_ACTUATIONS', status: 429 });
    expect(holds).toBe(CAP);
    // Full: one more is refused too.
    await expect(
      commerce.requestActuation(DEVICE, { command: 'again', priceMsat: msat(5000) }),
    ).rejects.toMatchObject({ code: 'TOO_MANY_ACTUATIONS' });
    await close();
  });

  it('answers 40 concurrent unauthenticated POST /v1/devices/:id/actuations with 16 created and 24 refused (429)', async () => {
    const { close, app } = await fixture(async (args) => {
      await turn();
      return holdInvoice(args);
    });
    const a = await app();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        a.inject({
          method: 'POST',
          url: `/v1/devices/${DEVICE}/actuations`,
          payload: { command: `open ${i}`, priceMsat: '5000' },
        }),
      ),
    );
    expect(answers.filter((r) => r.statusCode === 201)).toHaveLength(CAP);
    const refused = answers.filter((r) => r.statusCode !== 201);
    expect(refused).toHaveLength(40 - CAP);
    for (const r of refused) {
      expect(r.statusCode).toBe(429);
      expect(r.json()).toMatchObject({ error: { code: 'TOO_MANY_ACTUATIONS' } });
    }
    await a.close();
    await close();
  });

  it('gives the slot of a creation that failed back', async () => {
    let calls = 0;
    const { commerce, close } = await fixture(async (args) => {
      const call = ++calls;
      await turn();
      if (call <= 5) throw new Error('LND is unavailable');
      return holdInvoice(args);
    });
    const first = await requestMany(commerce, 20);
    expect(first.created).toHaveLength(CAP - 5);
    expect(first.refused.filter((e) => (e as { code?: string }).code === 'TOO_MANY_ACTUATIONS')).toHaveLength(
      4,
    );
    // The five failures held no slot: five more fit, and then the device is full.
    const second = await requestMany(commerce, 8);
    expect(second.created).toHaveLength(5);
    expect(second.refused).toHaveLength(3);
    await close();
  });
});
