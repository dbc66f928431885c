import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { envOverrides, loadConfig } from '../../../src/config/load.js';
import type { InvoiceSubscriptionOptions } from '../../../src/lightning/backend.js';
import { createLogger } from '../../../src/logger.js';
import { openAccounts } from '../../../src/main.js';
import { FakeLightning } from '../../support/fake-lightning.js';

/** The embedded LevelDB store: one process, always the leader, every duty running once opened. */
describe('openAccounts on the embedded store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coulomb-embedded-duties-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every singleton duty from the start, one invoice subscription, and stops them on close', async () => {
    const lnd = new FakeLightning();
    const subscriptions: { options: InvoiceSubscriptionOptions; open: boolean }[] = [];
    lnd.subscribeInvoices = (options: InvoiceSubscriptionOptions) => {
      const sub = { options, open: true };
      subscriptions.push(sub);
      return { close: () => void (sub.open = false) };
    };
    const config = loadConfig({ env: envOverrides({ COULOMB_DATA_DIR: dir }) });
    const accounts = await openAccounts(config, lnd, createLogger('silent'));
    expect(accounts.leadership.active).toEqual([
      'ledger key sweeps',
      'payment reconciliation, approval expiry, invoice pruning',
      'escrow sweeps',
      'task sweeps',
      'auction sweeps',
      'incoming stream lapse checks',
      'stream scheduler',
      'device event pruning',
      'device commerce catch-up and offer expiry',
      'energy market sweeps',
      'device kept-answer pruning',
      'L402 revocation pruning',
      'LND invoice subscription',
    ]);
    expect(subscriptions.map((s) => s.open)).toEqual([true]);
    // The cursor is the embedded store's.
    await subscriptions[0]!.options.cursor.save({ addIndex: 3, settleIndex: 2 });
    expect(await subscriptions[0]!.options.cursor.load()).toEqual({ addIndex: 3, settleIndex: 2 });
    await accounts.close();
    expect(accounts.leadership.active).toEqual([]);
    expect(subscriptions.map((s) => s.open)).toEqual([false]);
  });
});
