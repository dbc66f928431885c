import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xOnlyOf } from '../../../src/devices/envelope.js';
import type { CoulombApp } from '../../../src/http/app.js';
import type { LightningBackend } from '../../../src/lightning/backend.js';
import { featureServices } from '../../support/features-fixture.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'idempotency-operator-key-0123456789abcdef';
const auth = { authorization: `Bearer ${OP}` };
const DEVICE = xOnlyOf('66'.repeat(32));
let app: CoulombApp;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let stop: () => Promise<void>;

beforeAll(async () => {
  f = await paymentsFixture();
  // Actuations are paid through hold invoices: the fake answers with a plain invoice of the hash.
  const hold = f.lightning as unknown as Pick<LightningBackend, 'createHoldInvoice' | 'watchInvoice'>;
  hold.createHoldInvoice = async (args) => ({
    ...(await f.lightning.createInvoice({ amountMsat: args.amountMsat })),
    paymentHash: args.paymentHash,
  });
  hold.watchInvoice = () => ({ close: () => undefined });
  const features = await featureServices(f);
  app = await accountsApp(f, OP, features.accountServices);
  await f.account('payer', 10_000_000n);
  await f.account('payee', 0n);
  await f.account('sensor', 0n);
  await features.devices.register({ deviceId: DEVICE, accountId: 'sensor', name: 'lamp' });
  stop = async () => {
    await features.stop();
    f.service.stop();
    await app.close();
  };
});
afterAll(() => stop());

const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: auth, payload });
const balance = async (id: string) =>
  (await app.inject({ url: `/v1/accounts/${id}`, headers: auth })).json<{
    balanceMsat: string;
    availableMsat: string;
  }>();

describe('one idempotency rule for every route that creates something with money attached', () => {
  it('refuses an internal payment of a different invoice under a used key, and replays the same one', async () => {
    const invoice = async (amountMsat: string) =>
      (await post('/v1/accounts/payee/invoices', { amountMsat })).json<{
        request: string;
        paymentHash: string;
      }>();
    const first = await invoice('1000');
    const second = await invoice('2000');
    const paid = await post('/v1/accounts/payer/payments', { request: first.request, idempotencyKey: 'k' });
    expect(paid.statusCode).toBe(201);
    expect(paid.json()).toMatchObject({
      kind: 'internal',
      status: 'succeeded',
      paymentHash: first.paymentHash,
    });
    const before = await balance('payer');

    const other = await post('/v1/accounts/payer/payments', { request: second.request, idempotencyKey: 'k' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await balance('payer')).toEqual(before);
    const open = await app.inject({
      url: `/v1/accounts/payee/invoices/${second.paymentHash}`,
      headers: auth,
    });
    expect(open.json()).toMatchObject({ state: 'open' });

    const again = await post('/v1/accounts/payer/payments', { request: first.request, idempotencyKey: 'k' });
    expect(again.statusCode).toBe(201);
    expect(again.json()).toMatchObject({ id: paid.json().id, status: 'succeeded' });
    expect(await balance('payer')).toEqual(before);
  });

  it('creates an invoice once per key; a different invoice under the same key is a 409', async () => {
    const body = { amountMsat: '5000', description: 'tea', idempotencyKey: 'inv-1' };
    const created = f.lightning.invoices.size;
    const first = await post('/v1/accounts/payee/invoices', body);
    const again = await post('/v1/accounts/payee/invoices', body);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.json().paymentHash).toBe(first.json().paymentHash);
    expect(f.lightning.invoices.size).toBe(created + 1);
    const other = await post('/v1/accounts/payee/invoices', { ...body, amountMsat: '5001' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(f.lightning.invoices.size).toBe(created + 1);
  });

  it('creates an escrow once per key, locking the funds once', async () => {
    const body = {
      payeeAccountId: 'payee',
      amountMsat: '7000',
      condition: { type: 'approval' },
      funding: 'account',
      idempotencyKey: 'esc-1',
    };
    const before = await balance('payer');
    const first = await post('/v1/accounts/payer/escrows', body);
    const again = await post('/v1/accounts/payer/escrows', body);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.json().id).toBe(first.json().id);
    expect(BigInt((await balance('payer')).availableMsat)).toBe(BigInt(before.availableMsat) - 7000n);
    const other = await post('/v1/accounts/payer/escrows', { ...body, amountMsat: '7001' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(BigInt((await balance('payer')).availableMsat)).toBe(BigInt(before.availableMsat) - 7000n);
  });

  it('publishes a task once per key', async () => {
    const body = { title: 'label', rewardMsat: '3000', deadlineSeconds: 600, idempotencyKey: 'task-1' };
    const before = await balance('payer');
    const first = await post('/v1/accounts/payer/tasks', body);
    const again = await post('/v1/accounts/payer/tasks', body);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.json().id).toBe(first.json().id);
    expect(BigInt((await balance('payer')).availableMsat)).toBe(BigInt(before.availableMsat) - 3000n);
    const other = await post('/v1/accounts/payer/tasks', { ...body, title: 'other' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('starts a stream once per key', async () => {
    const body = { payee: { accountId: 'payee' }, rateMsat: '1000', perSeconds: 1, idempotencyKey: 'st-1' };
    const first = await post('/v1/accounts/payer/streams', body);
    const again = await post('/v1/accounts/payer/streams', body);
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.json().id).toBe(first.json().id);
    const listed = await app.inject({ url: '/v1/accounts/payer/streams', headers: auth });
    expect(listed.json<{ streams: unknown[] }>().streams).toHaveLength(1);
    const other = await post('/v1/accounts/payer/streams', { ...body, rateMsat: '2000' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('asks a device to act once per key', async () => {
    const body = { command: 'on', priceMsat: '2000', idempotencyKey: 'act-1' };
    const first = await app.inject({
      method: 'POST',
      url: `/v1/devices/${DEVICE}/actuations`,
      payload: body,
    });
    const again = await app.inject({
      method: 'POST',
      url: `/v1/devices/${DEVICE}/actuations`,
      payload: body,
    });
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual(first.json());
    const other = await app.inject({
      method: 'POST',
      url: `/v1/devices/${DEVICE}/actuations`,
      payload: { ...body, command: 'off' },
    });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('keys are per account, and one key of an account names one request of any kind', async () => {
    const inv = await post('/v1/accounts/payer/invoices', { amountMsat: '100', idempotencyKey: 'shared' });
    expect(inv.statusCode).toBe(201);
    const transfer = await post('/v1/accounts/payer/transfers', {
      toAccountId: 'payee',
      amountMsat: '100',
      idempotencyKey: 'shared',
    });
    expect(transfer.statusCode).toBe(409);
    expect(transfer.json().error.code).toBe('IDEMPOTENCY_CONFLICT');
    // Another account may use the same key for its own requests.
    const theirs = await post('/v1/accounts/payee/invoices', { amountMsat: '100', idempotencyKey: 'shared' });
    expect(theirs.statusCode).toBe(201);
    expect(theirs.json().paymentHash).not.toBe(inv.json().paymentHash);
  });
});
