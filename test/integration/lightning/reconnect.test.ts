import { afterAll, describe, expect, inject, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import type { ConnectionState, Invoice } from '../../../src/lightning/types.js';
import { stopDaemon } from '../../../src/regtest/processes.js';
import { RegtestNetwork } from '../../../src/regtest/network.js';
import { backendFor, eventually } from '../../support/regtest.js';

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers) await c();
});

describe('LndBackend across an LND restart', () => {
  it('reports the outage, reconnects, and its invoice subscription resumes without losing updates', async () => {
    const status = inject('regtest');
    const network = new RegtestNetwork({ dataDir: status.dataDir, basePort: status.basePort });
    const alice = await backendFor('alice');
    const carol = await backendFor('carol');
    closers.push(
      () => alice.close(),
      () => carol.close(),
    );

    const states: ConnectionState[] = [];
    alice.onConnectionChange((s) => states.push(s));
    await eventually(() => (alice.connectionState === 'connected' ? true : undefined));
    const cursor = { c: { addIndex: 0, settleIndex: 0 } };
    const seen: Invoice[] = [];
    const sub = alice.subscribeInvoices({
      cursor: { load: async () => ({ ...cursor.c }), save: async (c) => void (cursor.c = { ...c }) },
      onInvoice: async (i) => void seen.push(i),
    });
    closers.push(async () => sub.close());

    const before = await alice.createInvoice({ amountMsat: msat(1_000) });
    await eventually(() => seen.find((i) => i.paymentHash === before.paymentHash));

    // Kill alice's lnd; the adapter must notice.
    const n = network.layout.nodes.alice;
    await stopDaemon(n.pidFile, n.dir);
    await eventually(
      () => (alice.connectionState === 'disconnected' ? true : undefined),
      30_000,
      'disconnected',
    );
    await expect(alice.getNodeInfo()).rejects.toMatchObject({ code: 'LN_UNAVAILABLE' });

    // Bring it back (up() restarts only what is missing and waits until routes work again).
    await network.up();
    await eventually(() => (alice.connectionState === 'connected' ? true : undefined), 60_000, 'reconnected');
    expect(states).toEqual(expect.arrayContaining(['disconnected', 'connected']));

    // The same adapter and the same subscription carry on.
    const after = await alice.createInvoice({ amountMsat: msat(2_000) });
    const paid = await carol.payInvoice({
      request: after.request!,
      maxFeeMsat: msat(10_000),
      timeoutMs: 60_000,
    });
    expect(paid.status).toBe('succeeded');
    await eventually(
      () => seen.find((i) => i.paymentHash === after.paymentHash && i.state === 'settled'),
      60_000,
      'update after reconnect',
    );
  });
});
