import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoice, getInvoice, getPayment, pay } from 'ln-service';
import { afterAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../../support/gateway-process.js';
import { node, rawLnd } from '../../support/regtest.js';
import { TcpGate } from '../../support/tcp-gate.js';

const OPERATOR = 'crash-test-operator-key-0123456789abcdef';
const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-crash-'));
const FUNDING = 300_000_000n; // msat
const gateway = new GatewayProcess(dataDir, OPERATOR);

afterAll(() => gateway.kill9());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startGateway = () => gateway.start();
const kill9 = () => gateway.kill9();
const api = (url: string, method: string, path: string, body?: unknown) =>
  gateway.api(url, method, path, body);

describe('crash safety', () => {
  it('after SIGKILLs at random moments under mixed load, every balance matches what LND says happened', async () => {
    const [alice, bob, carol] = await Promise.all([rawLnd('alice'), rawLnd('bob'), rawLnd('carol')]);
    let url: string | undefined = await startGateway();
    expect(
      (await api(url, 'POST', '/v1/accounts', { id: 'crash-a', kind: 'agent', name: 'payer', tier: 'L3' }))
        .status,
    ).toBe(201);
    expect(
      (await api(url, 'POST', '/v1/accounts', { id: 'crash-b', kind: 'service', name: 'payee', tier: 'L0' }))
        .status,
    ).toBe(201);
    expect(
      (
        await api(url, 'POST', '/v1/accounts/crash-a/fund', {
          amountMsat: FUNDING.toString(),
          idempotencyKey: 'once',
        })
      ).status,
    ).toBe(200);

    const handedToA: string[] = []; // carol's invoices the payer was asked to pay
    const invoicesOfB: string[] = []; // B's invoices whose creation the gateway confirmed
    let stop = false;
    let ops = 0;
    const payer = async () => {
      while (!stop) {
        if (!url) {
          await sleep(20);
          continue;
        }
        const sat = 1000 + Math.floor(Math.random() * 2000);
        const inv = await createInvoice({ lnd: carol, tokens: sat, description: 'crash load' });
        handedToA.push(inv.id);
        await api(url, 'POST', '/v1/accounts/crash-a/payments', {
          request: inv.request,
          maxFeeMsat: '20000',
          idempotencyKey: inv.id,
        }).then(
          () => ops++,
          () => undefined,
        );
      }
    };
    const receiver = async () => {
      while (!stop) {
        if (!url) {
          await sleep(20);
          continue;
        }
        const created = await api(url, 'POST', '/v1/accounts/crash-b/invoices', {
          amountMsat: String(1_000_000 + Math.floor(Math.random() * 1_000_000)),
        }).catch(() => undefined);
        if (created?.status === 201) {
          invoicesOfB.push(created.json['paymentHash'] as string);
          await pay({ lnd: bob, request: created.json['request'] as string }).then(
            () => ops++,
            () => undefined,
          );
        }
      }
    };
    const load = Promise.all([payer(), payer(), receiver()]);

    const cycles = 12;
    for (let i = 0; i < cycles; i++) {
      await sleep(300 + Math.floor(Math.random() * 2200));
      url = undefined;
      await kill9();
      url = await startGateway();
    }
    stop = true;
    await load;
    expect(ops).toBeGreaterThan(cycles); // the load really ran between the kills

    // Let the last gateway reconcile and finish everything still in flight.
    await api(url, 'POST', '/v1/reconcile');
    const settled = async () => {
      const { json } = await api(url!, 'GET', '/v1/accounts/crash-a/payments?limit=500');
      return (json['payments'] as { status: string }[]).every((p) => p.status !== 'pending');
    };
    for (let i = 0; i < 300 && !(await settled()); i++) await sleep(200);
    expect(await settled()).toBe(true);

    // What LND says happened: the payer's spend (amount + fee) and the payee's receipts.
    let spent = 0n;
    for (const hash of handedToA) {
      const p = await getPayment({ lnd: alice, id: hash }).catch(() => undefined);
      if (p?.is_confirmed && p.payment) spent += BigInt(p.payment.mtokens);
    }
    let received = 0n;
    for (const hash of invoicesOfB) {
      const inv = await getInvoice({ lnd: alice, id: hash });
      if (inv.is_confirmed) received += BigInt(inv.received_mtokens);
    }
    for (let i = 0; i < 100; i++) {
      const b = await api(url, 'GET', '/v1/accounts/crash-b');
      if (BigInt(b.json['balanceMsat'] as string) === received) break;
      await sleep(100);
    }
    const a = (await api(url, 'GET', '/v1/accounts/crash-a')).json;
    const b = (await api(url, 'GET', '/v1/accounts/crash-b')).json;
    expect(spent).toBeGreaterThan(0n);
    expect(received).toBeGreaterThan(0n);
    expect(BigInt(a['balanceMsat'] as string)).toBe(FUNDING - spent);
    expect(a['availableMsat']).toBe(a['balanceMsat']); // nothing left reserved
    expect(BigInt(b['balanceMsat'] as string)).toBe(received);
    await kill9();
  }, 600_000);

  it('an invoice paid internally is canceled in LND even if the gateway dies before the cancel reaches LND', async () => {
    const [alice, bob] = await Promise.all([rawLnd('alice'), rawLnd('bob')]);
    // The gateway reaches LND through a relay that can hold its requests: what it sends while
    // held never arrives, so the kill lands exactly between the internal settlement and the cancel.
    const gate = await TcpGate.open(node('alice').grpcSocket);
    const gw = new GatewayProcess(
      mkdtempSync(join(tmpdir(), 'coulomb-crash-internal-')),
      OPERATOR,
      {},
      gate.address,
    );
    try {
      let url = await gw.start();
      const call = (method: string, path: string, body?: unknown) => gw.api(url, method, path, body);
      expect(
        (await call('POST', '/v1/accounts', { id: 'int-a', kind: 'agent', name: 'payer', tier: 'L3' }))
          .status,
      ).toBe(201);
      expect(
        (await call('POST', '/v1/accounts', { id: 'int-b', kind: 'service', name: 'payee', tier: 'L0' }))
          .status,
      ).toBe(201);
      expect((await call('POST', '/v1/accounts/int-a/fund', { amountMsat: '50000000' })).status).toBe(200);
      const AMOUNT = 1_000_000n;
      const invoices: { hash: string; request: string }[] = [];
      for (let i = 0; i < 4; i++) {
        const created = await call('POST', '/v1/accounts/int-b/invoices', { amountMsat: AMOUNT.toString() });
        expect(created.status).toBe(201);
        invoices.push({
          hash: created.json['paymentHash'] as string,
          request: created.json['request'] as string,
        });
      }

      gate.hold();
      for (const inv of invoices) {
        const paid = await call('POST', '/v1/accounts/int-a/payments', { request: inv.request });
        expect(paid.status).toBe(201);
        expect(paid.json).toMatchObject({ kind: 'internal', status: 'succeeded' });
      }
      await gw.kill9();
      gate.cut(); // the cancels the gateway sent died with it

      url = await gw.start();
      expect((await call('POST', '/v1/reconcile')).status).toBe(200);
      for (const inv of invoices) {
        const lnd = await getInvoice({ lnd: alice, id: inv.hash });
        expect({ hash: inv.hash, canceled: lnd.is_canceled }).toEqual({ hash: inv.hash, canceled: true });
      }
      // So nobody can pay them again from outside, and the payee was paid exactly once.
      for (const inv of invoices) {
        const outside = await pay({ lnd: bob, request: inv.request }).then(
          () => 'paid',
          () => 'refused',
        );
        expect(outside).toBe('refused');
      }
      const b = (await call('GET', '/v1/accounts/int-b')).json;
      expect(BigInt(b['balanceMsat'] as string)).toBe(AMOUNT * BigInt(invoices.length));
    } finally {
      await gw.kill9();
      await gate.close();
    }
  }, 300_000);
});
