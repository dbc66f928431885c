import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts } from '../../../src/main.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, eventually, rawLnd } from '../../support/regtest.js';

let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let s: AccountServices;

beforeAll(async () => {
  backend = await backendFor('alice');
  const config = { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-auction-')) };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }), { payTimeoutMs: 5_000 });
  s = stack.services;
});
afterAll(async () => {
  await stack?.close();
  await backend?.close();
});

async function agent(id: string, capabilities: string[]): Promise<void> {
  await s.ledger.createAccount({ id, kind: 'agent', name: id }).durable;
  await s.policies.set(id, tierPolicy('L2'));
  if (capabilities.length > 0)
    await s.registry!.advertise(id, {
      title: id,
      description: '',
      capabilities,
      priceMsat: msat(1000),
      unit: 'task',
    });
}

describe('task reverse auction on regtest', () => {
  it('picks the documented winner at the deadline and escrows its bid; the reward is paid on acceptance', async () => {
    await agent('buyer', []);
    const inv = await s.payments.createInvoice('buyer', {
      amountMsat: msat(50_000_000),
      description: 'fund',
    });
    await pay({ lnd: await rawLnd('bob'), request: inv.request });
    await eventually(
      async () => (balanceOf(await s.ledger.requireAccount('buyer')) === 50_000_000n ? true : undefined),
      15_000,
      'funded over Lightning',
    );
    await agent('robot-fast', ['weld']);
    await agent('robot-cheap', ['weld']);
    await agent('robot-none', []);
    const a = await s.auctions!.open('buyer', {
      title: 'weld the frame',
      capabilities: ['weld'],
      maxRewardMsat: msat(10_000_000),
      bidSeconds: 3,
      maxPromisedSeconds: 3600,
    });
    // Score (lower wins): 50 × price/ceiling + 30 × promised/max + 20 × risk.
    // fast: 50 × 0.6 + 30 × 0.25 = 37.5; cheap: 50 × 0.4 + 30 × 1.0 = 50.
    await s.auctions!.bid(a.id, 'robot-cheap', msat(4_000_000), 3600);
    await s.auctions!.bid(a.id, 'robot-fast', msat(6_000_000), 900);
    await expect(s.auctions!.bid(a.id, 'robot-none', msat(1), 1)).rejects.toMatchObject({
      code: 'MISSING_CAPABILITY',
    });
    const awarded = await eventually(
      async () => {
        const x = await s.auctions!.get(a.id);
        return x.state === 'awarded' ? x : undefined;
      },
      15_000,
      'the automatic award',
    );
    expect(awarded.winnerAccountId).toBe('robot-fast');
    const task = await s.market!.get(awarded.taskId!);
    expect(task).toMatchObject({ state: 'claimed', agentAccountId: 'robot-fast', rewardMsat: 6_000_000n });
    expect(availableOf(await s.ledger.requireAccount('buyer'))).toBe(44_000_000n);
    await s.market!.submit(task.id, 'robot-fast', 'welded');
    await s.market!.accept(task.id, 'buyer');
    expect(balanceOf(await s.ledger.requireAccount('robot-fast'))).toBe(6_000_000n);
    expect(balanceOf(await s.ledger.requireAccount('buyer'))).toBe(44_000_000n);
  });
});
