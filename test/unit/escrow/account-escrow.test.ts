import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { ESCROW_ACCOUNT } from '../../../src/escrow/service.js';
import { signReceipt, xOnlyPublicKey } from '../../../src/escrow/receipt.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import { OutboundGuard } from '../../../src/net/outbound.js';
import { escrowFixture } from './fixture.js';

const payer = { type: 'account', accountId: 'payer' } as const;
const payee = { type: 'account', accountId: 'payee' } as const;
const other = { type: 'account', accountId: 'other' } as const;
const operator = { type: 'operator' } as const;
const DEVICE_KEY = '11'.repeat(32);

const bal = (f: Awaited<ReturnType<typeof escrowFixture>>, id: string) => balanceOf(f.ledger.accountNow(id)!);
const avail = (f: Awaited<ReturnType<typeof escrowFixture>>, id: string) =>
  availableOf(f.ledger.accountNow(id)!);

let closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers) c();
  closers = [];
});

describe('account-funded escrow', () => {
  it('locks the amount at once and releases it to the payee on the payer’s approval', async () => {
    const f = await escrowFixture();
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(300_000),
      condition: { type: 'approval' },
      funding: 'account',
    });
    expect(e).toMatchObject({ state: 'funded', funding: 'account' });
    expect(e.preimage).toBeUndefined();
    expect(avail(f, 'payer')).toBe(700_000n);
    await expect(f.escrow.approve(e.id, payee)).rejects.toMatchObject({ code: 'ESCROW_FORBIDDEN' });
    const released = await f.escrow.approve(e.id, payer);
    expect(released).toMatchObject({ state: 'released', reason: 'approved' });
    expect([bal(f, 'payer'), bal(f, 'payee'), bal(f, ESCROW_ACCOUNT)]).toEqual([700_000n, 300_000n, 0n]);
    // Approving again changes nothing.
    expect((await f.escrow.approve(e.id, payer)).state).toBe('released');
    expect(bal(f, 'payee')).toBe(300_000n);
    expect(f.events.filter((x) => x.accountId === 'payee').at(-1)?.event.escrow.state).toBe('released');
  });

  it('refunds at the deadline', async () => {
    const f = await escrowFixture();
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(100_000),
      condition: { type: 'approval' },
      funding: 'account',
      timeoutSeconds: 60,
    });
    f.advance(61_000);
    await (f.escrow as unknown as { sweepDeadlines(): Promise<void> }).sweepDeadlines();
    expect(await f.escrow.get(e.id)).toMatchObject({ state: 'refunded', reason: 'deadline' });
    expect([avail(f, 'payer'), bal(f, 'payee')]).toEqual([1_000_000n, 0n]);
    await expect(f.escrow.approve(e.id, payer)).rejects.toMatchObject({ code: 'ESCROW_INVALID_STATE' });
  });

  it('reads receipt keys from disk when a receipt comes, none at start (after a restart too)', async () => {
    const f = await escrowFixture();
    await f.escrow.registerReceiptKey('payee', xOnlyPublicKey(DEVICE_KEY));
    await f.escrow.registerReceiptKey('payee', xOnlyPublicKey('33'.repeat(32)));
    await f.escrow.removeReceiptKey('payee', xOnlyPublicKey('33'.repeat(32)));
    let listed: string[] = [];
    const list = f.ledger.listRecords.bind(f.ledger);
    f.ledger.listRecords = async (prefix, options) => ((listed = [...listed, prefix]), list(prefix, options));
    const again = await f.restart(f.escrow);
    expect(listed.filter((p) => p.startsWith('rkey!'))).toEqual([]);
    expect(await again.listReceiptKeys('payee')).toEqual([xOnlyPublicKey(DEVICE_KEY)]);
    const e = await again.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(50_000),
      condition: { type: 'receipt' },
      funding: 'account',
    });
    const good = signReceipt(DEVICE_KEY, e.id, e.paymentHash, 'parcel delivered');
    expect(
      (await again.submitReceipt(e.id, payee, { payload: 'parcel delivered', signature: good })).state,
    ).toBe('released');
    again.stop();
  });

  it('releases on a receipt signed by a registered key, not on a forged or replayed one', async () => {
    const f = await escrowFixture();
    await f.escrow.registerReceiptKey('payee', xOnlyPublicKey(DEVICE_KEY));
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(50_000),
      condition: { type: 'receipt' },
      funding: 'account',
    });
    const forged = signReceipt('22'.repeat(32), e.id, e.paymentHash, 'parcel 7 delivered');
    await expect(
      f.escrow.submitReceipt(e.id, payee, { payload: 'parcel 7 delivered', signature: forged }),
    ).rejects.toMatchObject({ code: 'INVALID_PROOF', status: 422 });
    const good = signReceipt(DEVICE_KEY, e.id, e.paymentHash, 'parcel 7 delivered');
    await expect(
      f.escrow.submitReceipt(e.id, payee, { payload: 'parcel 8 delivered', signature: good }),
    ).rejects.toMatchObject({ code: 'INVALID_PROOF' });
    // A receipt for another escrow does not release this one.
    const e2 = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(50_000),
      condition: { type: 'receipt' },
      funding: 'account',
    });
    await expect(
      f.escrow.submitReceipt(e2.id, payee, { payload: 'parcel 7 delivered', signature: good }),
    ).rejects.toMatchObject({ code: 'INVALID_PROOF' });
    expect(bal(f, 'payee')).toBe(0n);
    await expect(
      f.escrow.submitReceipt(e.id, other, { payload: 'parcel 7 delivered', signature: good }),
    ).rejects.toMatchObject({ code: 'ESCROW_FORBIDDEN' });
    const released = await f.escrow.submitReceipt(e.id, payee, {
      payload: 'parcel 7 delivered',
      signature: good,
    });
    expect(released.state).toBe('released');
    expect(bal(f, 'payee')).toBe(50_000n);
  });

  it('asks the webhook verifier: true releases, false refunds, silence decides nothing', async () => {
    // A verifier on this machine is reachable only because the operator allows it.
    const f = await escrowFixture({ outbound: new OutboundGuard({ allow: ['127.0.0.1'] }) });
    let answer: 'yes' | 'no' | 'hang' = 'hang';
    const seen: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(JSON.parse(body));
        if (answer === 'hang') return;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ release: answer === 'yes' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(
      () => server.closeAllConnections(),
      () => server.close(),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/verify`;
    const make = () =>
      f.escrow.create('payer', {
        payeeAccountId: 'payee',
        amountMsat: msat(10_000),
        condition: { type: 'webhook', url, timeoutMs: 200 },
        funding: 'account',
      });
    const a = await make();
    await expect(f.escrow.verify(a.id, payee, { photo: 'x' })).rejects.toMatchObject({
      code: 'VERIFIER_FAILED',
    });
    expect(await f.escrow.get(a.id)).toMatchObject({ state: 'funded' });
    expect(seen[0]).toMatchObject({ escrowId: a.id, amountMsat: '10000', evidence: { photo: 'x' } });
    answer = 'yes';
    expect((await f.escrow.verify(a.id, payee, {})).state).toBe('released');
    const b = await make();
    answer = 'no';
    expect(await f.escrow.verify(b.id, payee, {})).toMatchObject({
      state: 'refunded',
      reason: 'verifier_rejected',
    });
    expect(bal(f, 'payee')).toBe(10_000n);
    expect(avail(f, 'payer')).toBe(990_000n);
  });

  it('refuses verifier URLs that point inside the gateway’s network, at creation (400)', async () => {
    const f = await escrowFixture();
    for (const url of [
      'http://127.0.0.1:8402/v1/accounts',
      'http://localhost:8403/',
      'http://[::ffff:127.0.0.1]:1883/',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.7/verify',
      'http://user:pw@verifier.example.com/',
    ]) {
      await expect(
        f.escrow.create('payer', {
          payeeAccountId: 'payee',
          amountMsat: msat(10_000),
          condition: { type: 'webhook', url, timeoutMs: 500 },
          funding: 'account',
        }),
      ).rejects.toMatchObject({ code: 'OUTBOUND_URL_FORBIDDEN', status: 400 });
    }
    expect(avail(f, 'payer')).toBe(1_000_000n);
  });

  it('checks the verifier’s resolved address at call time and tells the caller nothing about the target', async () => {
    const hits: string[] = [];
    let mode: 'fail' | 'hang' = 'fail';
    const server = createServer((req, res) => {
      hits.push(req.url ?? '');
      if (mode === 'hang') return;
      res.statusCode = 500;
      res.end('internal detail');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(
      () => server.closeAllConnections(),
      () => server.close(),
    );
    const port = (server.address() as AddressInfo).port;
    const resolve = async (host: string) =>
      host === 'verifier.test'
        ? [{ address: '127.0.0.1', family: 4 as const }]
        : Promise.reject(new Error('ENOTFOUND'));
    // A public-looking name that resolves to loopback: the gateway must not call it.
    const f = await escrowFixture({ outbound: new OutboundGuard({ resolve }) });
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(10_000),
      condition: { type: 'webhook', url: `http://verifier.test:${port}/verify`, timeoutMs: 300 },
      funding: 'account',
    });
    const refused = await f.escrow.verify(e.id, payee, {}).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: 'VERIFIER_FAILED', status: 424 });
    expect(hits).toEqual([]);
    expect(await f.escrow.get(e.id)).toMatchObject({ state: 'funded' });

    // Allowed by the operator, the same target is called; what it answers, whether it answers
    // and whether its port is closed all read the same to the caller.
    const g = await escrowFixture({ outbound: new OutboundGuard({ resolve, allow: ['127.0.0.1'] }) });
    const make = async (url: string) =>
      (
        await g.escrow.create('payer', {
          payeeAccountId: 'payee',
          amountMsat: msat(10_000),
          condition: { type: 'webhook', url, timeoutMs: 300 },
          funding: 'account',
        })
      ).id;
    const answered500 = await g.escrow
      .verify(await make(`http://127.0.0.1:${port}/a`), payee, {})
      .catch((err: unknown) => err);
    mode = 'hang';
    const timedOut = await g.escrow
      .verify(await make(`http://127.0.0.1:${port}/b`), payee, {})
      .catch((err: unknown) => err);
    const closed = await g.escrow
      .verify(await make('http://127.0.0.1:1/c'), payee, {})
      .catch((err: unknown) => err);
    expect(hits).toEqual(['/a', '/b']);
    const seen = [refused, answered500, timedOut, closed].map((err) => ({
      code: (err as { code: string }).code,
      message: (err as Error).message,
    }));
    expect(new Set(seen.map((s) => JSON.stringify(s))).size).toBe(1);
    expect(seen[0]!.message).not.toMatch(/500|refused|ECONN|timeout|within|127\.0\.0\.1|loopback/i);
    expect((await g.escrow.list('payer')).escrows.map((x) => x.verifierError)).toEqual([
      seen[0]!.message,
      seen[0]!.message,
      seen[0]!.message,
    ]);
  });

  it('enforces the payer’s spending policy on the lock and refuses bad input without moving money', async () => {
    const f = await escrowFixture();
    await f.policies.set('payer', { rules: [{ type: 'max_per_payment', maxMsat: msat(1000) }] });
    await expect(
      f.escrow.create('payer', {
        payeeAccountId: 'payee',
        amountMsat: msat(5000),
        condition: { type: 'approval' },
        funding: 'account',
      }),
    ).rejects.toMatchObject({ code: 'PAYMENT_CAP_EXCEEDED' });
    for (const bad of [
      { amountMsat: msat(0) },
      { payeeAccountId: 'payer' },
      { payeeAccountId: 'nobody' },
      { cltvDelta: 600 },
      { condition: { type: 'preimage' as const, paymentHash: 'zz' } },
    ]) {
      await expect(
        f.escrow.create('payer', {
          payeeAccountId: 'payee',
          amountMsat: msat(500),
          condition: { type: 'approval' },
          funding: 'account',
          ...bad,
        }),
      ).rejects.toMatchObject({ status: expect.any(Number) as number });
    }
    expect(avail(f, 'payer')).toBe(1_000_000n);
    expect((await f.escrow.list('payer')).escrows).toHaveLength(0);
  });

  it('only parties see an escrow; the payee may give the money back, the payer may not take it back', async () => {
    const f = await escrowFixture();
    const e = await f.escrow.create('payer', {
      payeeAccountId: 'payee',
      amountMsat: msat(20_000),
      condition: { type: 'approval' },
      funding: 'account',
    });
    await expect(f.escrow.get(e.id, other)).rejects.toMatchObject({ code: 'ESCROW_NOT_FOUND' });
    await expect(f.escrow.cancel(e.id, payer)).rejects.toMatchObject({ code: 'ESCROW_FORBIDDEN' });
    expect((await f.escrow.cancel(e.id, payee, 'cannot deliver')).state).toBe('refunded');
    expect(avail(f, 'payer')).toBe(1_000_000n);
    const e2 = await f.escrow.create('payer', {
      amountMsat: msat(20_000),
      condition: { type: 'approval' },
      funding: 'account',
    });
    await expect(f.escrow.approve(e2.id, operator)).rejects.toMatchObject({ code: 'NO_PAYEE' });
    await f.escrow.assignPayee(e2.id, 'payee');
    expect((await f.escrow.approve(e2.id, operator)).state).toBe('released');
  });
});
