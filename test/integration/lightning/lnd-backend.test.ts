import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { LightningError } from '../../../src/lightning/errors.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import type { Invoice, InvoiceCursor, InvoiceCursorStore } from '../../../src/lightning/types.js';
import { LevelCursorStore } from '../../../src/storage/level-cursor-store.js';
import { createChainAddress, getPeers, getWalletInfo } from 'ln-service';
import { bakeGatewayMacaroon } from '../../../src/lightning/lnd/bake-macaroon.js';
import { connectLnd } from '../../../src/lightning/lnd/connect.js';
import { toLightningError } from '../../../src/lightning/lnd/map-error.js';
import { backendFor, creds, eventually, node, rawLnd } from '../../support/regtest.js';

const FEE_LIMIT = msat(100_000);
let alice: LndBackend;
let bob: LndBackend;
let carol: LndBackend;

beforeAll(async () => {
  [alice, bob, carol] = await Promise.all([backendFor('alice'), backendFor('bob'), backendFor('carol')]);
});
afterAll(async () => {
  await Promise.all([alice?.close(), bob?.close(), carol?.close()]);
});

class MemoryCursor implements InvoiceCursorStore {
  constructor(public cursor: InvoiceCursor) {}
  async load(): Promise<InvoiceCursor> {
    return { ...this.cursor };
  }
  async save(c: InvoiceCursor): Promise<void> {
    this.cursor = { ...c };
  }
}

/** From the beginning of LND's history: tests pick out their own invoices by hash. */
const fromStart = (): MemoryCursor => new MemoryCursor({ addIndex: 0, settleIndex: 0 });

/** Subscribes and returns once the stream is live (it has delivered a fresh invoice of ours). */
async function collect(
  backend: LndBackend,
  cursor: InvoiceCursorStore,
): Promise<{ invoices: Invoice[]; close: () => void }> {
  const invoices: Invoice[] = [];
  const sub = backend.subscribeInvoices({ cursor, onInvoice: async (i) => void invoices.push(i) });
  await live(backend, invoices);
  return { invoices, close: () => sub.close() };
}

/** A subscription with a 0/0 cursor sees only what happens after it attaches: wait for that. */
async function live(backend: LndBackend, seen: Invoice[]): Promise<void> {
  await eventually(
    async () => {
      const probe = await backend.createInvoice({ amountMsat: msat(1), description: 'liveness probe' });
      await new Promise((r) => setTimeout(r, 200));
      return seen.some((i) => i.paymentHash === probe.paymentHash) ? true : undefined;
    },
    30_000,
    'subscription to go live',
  );
}

describe('LndBackend on regtest', () => {
  it('runs on a least-privilege macaroon that cannot move on-chain funds or manage peers', async () => {
    const baked = await bakeGatewayMacaroon({ lnd: await rawLnd('alice') });
    const lnd = await connectLnd({ ...creds('alice'), macaroon: baked });
    await expect(createChainAddress({ lnd })).rejects.toBeDefined();
    await expect(getPeers({ lnd })).rejects.toBeDefined();
    const denied = await getPeers({ lnd }).catch((err: unknown) => toLightningError(err, 'getPeers'));
    expect(denied).toMatchObject({ code: 'LN_PERMISSION_DENIED' });
    expect((await getWalletInfo({ lnd })).public_key).toBe(node('alice').pubkey);
  });

  it('reports node info and balances in msat', async () => {
    const info = await alice.getNodeInfo();
    expect(info.pubkey).toBe(node('alice').pubkey);
    expect(info.network).toBe('regtest');
    expect(info.syncedToChain).toBe(true);
    const balances = await alice.getBalances();
    expect(typeof balances.channelLocalMsat).toBe('bigint');
    expect(balances.channelLocalMsat).toBeGreaterThan(0n);
    expect(balances.channelRemoteMsat).toBeGreaterThan(0n);
  });

  it('an invoice on alice paid by carol over two hops is reported settled through the subscription', async () => {
    const cursor = fromStart();
    const feed = await collect(alice, cursor);
    try {
      const invoice = await alice.createInvoice({ amountMsat: msat(250_123), description: 'two hops' });
      expect(invoice.state).toBe('open');
      const decoded = await carol.decodeInvoice(invoice.request!);
      expect(decoded).toMatchObject({
        paymentHash: invoice.paymentHash,
        destination: node('alice').pubkey,
        amountMsat: 250_123n,
      });
      const paid = await carol.payInvoice({
        request: invoice.request!,
        maxFeeMsat: FEE_LIMIT,
        timeoutMs: 60_000,
      });
      expect(paid.status).toBe('succeeded');
      if (paid.status !== 'succeeded') return;
      expect(paid.amountMsat).toBe(250_123n);
      expect(paid.feeMsat).toBeGreaterThan(0n); // bob charges a routing fee
      expect(createHash('sha256').update(Buffer.from(paid.preimage, 'hex')).digest('hex')).toBe(
        invoice.paymentHash,
      );
      const settled = await eventually(() =>
        feed.invoices.find((i) => i.paymentHash === invoice.paymentHash && i.state === 'settled'),
      );
      expect(settled.receivedMsat).toBe(250_123n);
      expect(settled.settleIndex).toBeGreaterThan(0);
      expect(cursor.cursor.settleIndex).toBe(settled.settleIndex);
      expect((await alice.lookupInvoice(invoice.paymentHash)).state).toBe('settled');
      expect(await carol.trackPayment(invoice.paymentHash)).toEqual(paid);
    } finally {
      feed.close();
    }
  });

  it('a payment that cannot route ends failed with a typed reason, and bad input is a typed error', async () => {
    // Alice holds about 5M sat towards bob; 8M sat cannot go anywhere.
    const big = await carol.createInvoice({ amountMsat: msat(8_000_000_000n), description: 'too big' });
    const outcome = await alice.payInvoice({
      request: big.request!,
      maxFeeMsat: FEE_LIMIT,
      timeoutMs: 60_000,
    });
    expect(outcome).toMatchObject({ status: 'failed', paymentHash: big.paymentHash });
    if (outcome.status === 'failed') expect(['NO_ROUTE', 'INSUFFICIENT_BALANCE']).toContain(outcome.reason);
    expect(await alice.trackPayment(big.paymentHash)).toMatchObject({ status: 'failed' });

    await expect(
      alice.payInvoice({ request: 'lnbcrt1notaninvoice', maxFeeMsat: FEE_LIMIT }),
    ).rejects.toMatchObject({
      code: 'LN_INVALID_REQUEST',
    });
    await expect(alice.lookupInvoice('00'.repeat(32))).rejects.toBeInstanceOf(LightningError);
    await expect(alice.lookupInvoice('00'.repeat(32))).rejects.toMatchObject({
      code: 'LN_INVOICE_NOT_FOUND',
      status: 404,
    });
    await expect(alice.lookupInvoice('xyz')).rejects.toMatchObject({ code: 'LN_INVALID_ARGUMENT' });
  });

  it('a hold invoice paid by bob is accepted, then settled, and bob’s payment succeeds', async () => {
    const preimage = randomBytes(32).toString('hex');
    const hash = createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex');
    const states: string[] = [];
    const hold = await alice.createHoldInvoice({
      paymentHash: hash,
      amountMsat: msat(42_000),
      cltvDelta: 40,
      description: 'escrow',
    });
    expect(hold.state).toBe('open');
    expect(hold.cltvDelta).toBe(40);
    const watch = alice.watchInvoice(hash, (i) => states.push(i.state));
    try {
      const paying = bob.payInvoice({ request: hold.request!, maxFeeMsat: FEE_LIMIT, timeoutMs: 60_000 });
      await eventually(() => (states.includes('accepted') ? true : undefined), 30_000, 'accepted');
      await expect(alice.cancelHoldInvoice('zz')).rejects.toMatchObject({ code: 'LN_INVALID_ARGUMENT' });
      await alice.settleHoldInvoice(preimage);
      const outcome = await paying;
      expect(outcome).toMatchObject({ status: 'succeeded', preimage, amountMsat: 42_000n, feeMsat: 0n });
      await eventually(() => (states.includes('settled') ? true : undefined), 30_000, 'settled');
      expect(states.indexOf('accepted')).toBeLessThan(states.indexOf('settled'));
      expect(states.includes('canceled')).toBe(false);
    } finally {
      watch.close();
    }
  });

  it('a canceled hold invoice fails bob’s payment and returns his funds', async () => {
    const hash = createHash('sha256').update(randomBytes(32)).digest('hex');
    const before = (await bob.getBalances()).channelLocalMsat;
    const hold = await alice.createHoldInvoice({ paymentHash: hash, amountMsat: msat(77_000) });
    const states: string[] = [];
    const watch = alice.watchInvoice(hash, (i) => states.push(i.state));
    try {
      const paying = bob.payInvoice({ request: hold.request!, maxFeeMsat: FEE_LIMIT, timeoutMs: 60_000 });
      await eventually(() => (states.includes('accepted') ? true : undefined), 30_000, 'accepted');
      await expect(alice.settleHoldInvoice('00'.repeat(32))).rejects.toBeInstanceOf(LightningError);
      await alice.cancelHoldInvoice(hash);
      const outcome = await paying;
      expect(outcome).toMatchObject({
        status: 'failed',
        paymentHash: hash,
        reason: 'INCORRECT_PAYMENT_DETAILS',
      });
      await eventually(() => (states.includes('canceled') ? true : undefined), 30_000, 'canceled');
      await eventually(
        async () => ((await bob.getBalances()).channelLocalMsat === before ? true : undefined),
        30_000,
        'funds back',
      );
      expect((await alice.lookupInvoice(hash)).state).toBe('canceled');
    } finally {
      watch.close();
    }
  });

  it('a payment whose wait times out stays pending, and tracking finds its final state', async () => {
    const preimage = randomBytes(32).toString('hex');
    const hash = createHash('sha256').update(Buffer.from(preimage, 'hex')).digest('hex');
    const hold = await alice.createHoldInvoice({ paymentHash: hash, amountMsat: msat(5_000) });
    const outcome = await bob.payInvoice({ request: hold.request!, maxFeeMsat: FEE_LIMIT, timeoutMs: 1_000 });
    expect(outcome).toEqual({ status: 'pending', paymentHash: hash });
    // A retry while the first attempt is in flight is never reported as failed.
    const retry = await bob.payInvoice({ request: hold.request!, maxFeeMsat: FEE_LIMIT, timeoutMs: 1_000 });
    expect(retry).toEqual({ status: 'pending', paymentHash: hash });
    expect(await bob.trackPayment(hash, { timeoutMs: 500 })).toEqual({
      status: 'pending',
      paymentHash: hash,
    });
    await eventually(async () => ((await alice.lookupInvoice(hash)).state === 'accepted' ? true : undefined));
    await alice.settleHoldInvoice(preimage);
    expect(await bob.trackPayment(hash, { timeoutMs: 30_000 })).toMatchObject({
      status: 'succeeded',
      preimage,
      amountMsat: 5_000n,
    });
    expect(await bob.trackPayment('ab'.repeat(32))).toEqual({
      status: 'not_found',
      paymentHash: 'ab'.repeat(32),
    });
  });

  it('a keysend from carol arrives at alice with its custom TLV record', async () => {
    const cursor = fromStart();
    const feed = await collect(alice, cursor);
    try {
      const record = { type: 696969n, value: Buffer.from('coulomb stream 7 seq 1').toString('hex') };
      // The largest type LND takes (uint64) arrives as itself, not wrapped.
      const last = { type: 2n ** 64n - 1n, value: 'ff' };
      const outcome = await carol.keysend({
        destination: node('alice').pubkey,
        amountMsat: msat(12_345),
        maxFeeMsat: FEE_LIMIT,
        records: [record, last],
      });
      expect(outcome).toMatchObject({ status: 'succeeded', amountMsat: 12_345n });
      const received = await eventually(() =>
        feed.invoices.find(
          (i) => i.isKeysend && i.state === 'settled' && i.paymentHash === outcome.paymentHash,
        ),
      );
      expect(received.receivedMsat).toBe(12_345n);
      const records = received.htlcs.flatMap((h) => h.records);
      expect(records).toContainEqual(record);
      expect(records).toContainEqual(last);
      for (const type of [5n, 2n ** 64n, 5482373484n]) {
        await expect(
          carol.keysend({
            destination: node('alice').pubkey,
            amountMsat: msat(1),
            maxFeeMsat: FEE_LIMIT,
            records: [{ type, value: '00' }],
          }),
        ).rejects.toMatchObject({
          code: 'LN_INVALID_ARGUMENT',
        });
      }
    } finally {
      feed.close();
    }
  });

  it('invoices settled while the adapter was stopped are delivered after it restarts (catch-up)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coulomb-cursor-'));
    const start = fromStart();
    let opened = await LevelCursorStore.open(dir);
    await opened.store.save(start.cursor);

    // First life: the adapter sees one settlement, then stops.
    let gateway = await backendFor('alice');
    const first: Invoice[] = [];
    let sub = gateway.subscribeInvoices({ cursor: opened.store, onInvoice: async (i) => void first.push(i) });
    await live(alice, first);
    const a = await alice.createInvoice({ amountMsat: msat(1_111), description: 'before stop' });
    await carol.payInvoice({ request: a.request!, maxFeeMsat: FEE_LIMIT });
    await eventually(() => first.find((i) => i.paymentHash === a.paymentHash && i.state === 'settled'));
    sub.close();
    await gateway.close();
    await opened.db.close();

    // While it is down, two invoices are created and paid in the reverse order, so that LND's
    // catch-up (by add index, then by settle index) delivers settlements out of order.
    const first1 = await alice.createInvoice({ amountMsat: msat(2_222) });
    const second2 = await alice.createInvoice({ amountMsat: msat(3_333) });
    const missed = [first1, second2];
    for (const inv of [second2, first1]) {
      expect((await carol.payInvoice({ request: inv.request!, maxFeeMsat: FEE_LIMIT })).status).toBe(
        'succeeded',
      );
    }

    // Second life, from the persisted cursor only.
    opened = await LevelCursorStore.open(dir);
    gateway = await backendFor('alice');
    const second: Invoice[] = [];
    sub = gateway.subscribeInvoices({ cursor: opened.store, onInvoice: async (i) => void second.push(i) });
    try {
      for (const inv of missed) {
        await eventually(
          () => second.find((i) => i.paymentHash === inv.paymentHash && i.state === 'settled'),
          30_000,
          'catch-up',
        );
      }
      // What the first life handled is not delivered again.
      expect(second.some((i) => i.paymentHash === a.paymentHash && i.state === 'settled')).toBe(false);
    } finally {
      sub.close();
      await gateway.close();
      await opened.db.close();
    }
  });
});
