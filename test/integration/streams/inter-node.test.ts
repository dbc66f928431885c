import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { msat } from '../../../src/domain/msat.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { balanceOf } from '../../../src/ledger/types.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts } from '../../../src/main.js';
import type { AccountEvent } from '../../../src/payments/types.js';
import { OPERATOR_ACCOUNT } from '../../../src/ledger/system-accounts.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, eventually } from '../../support/regtest.js';

type Stack = { services: AccountServices; close(): Promise<void> };
let aliceBackend: LndBackend;
let carolBackend: LndBackend;
let alice: Stack;
let carol: Stack;

const open = (backend: LndBackend, name: string) =>
  openAccounts(
    { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), `coulomb-streams-${name}-`)) },
    backend,
    pino({ level: 'silent' }),
    { payTimeoutMs: 5_000 },
  );

beforeAll(async () => {
  [aliceBackend, carolBackend] = await Promise.all([backendFor('alice'), backendFor('carol')]);
  [alice, carol] = await Promise.all([open(aliceBackend, 'alice'), open(carolBackend, 'carol')]);
  await alice.services.ledger.createAccount({ id: 'streamer', kind: 'agent', name: 'streamer' }).durable;
  await alice.services.policies.set('streamer', tierPolicy('L3'));
  await alice.services.ledger.transfer({
    debitAccountId: OPERATOR_ACCOUNT,
    creditAccountId: 'streamer',
    amount: msat(50_000_000),
    code: 'funding',
  }).durable;
  await carol.services.ledger.createAccount({ id: 'relay', kind: 'device', name: 'relay' }).durable;
});
afterAll(async () => {
  await alice?.close();
  await carol?.close();
  await aliceBackend?.close();
  await carolBackend?.close();
});

describe('inter-node streaming payments (alice → bob → carol)', () => {
  it('a 1 s stream for 20+ s delivers the expected total, and carol’s side reports the lapse after it stops', async () => {
    const events: AccountEvent[] = [];
    carol.services.events.subscribe('relay', (e) => events.push(e));
    const inbox = await carol.services.receiver!.createInbox('relay', { graceSeconds: 3 });
    const RATE = 2_500n; // msat per second
    const stream = await alice.services.streams!.create('streamer', {
      payee: { nodePubkey: inbox.nodePubkey, recipientId: inbox.recipientId },
      rateMsat: msat(RATE),
      intervalSeconds: 1,
    });
    expect(stream).toMatchObject({ mode: 'remote', state: 'active' });
    await new Promise((r) => setTimeout(r, 21_000));
    const stopped = await alice.services.streams!.stop(stream.id);
    expect(stopped.state).toBe('stopped');
    const seconds = BigInt(stopped.activeSeconds);
    expect(seconds).toBeGreaterThanOrEqual(20n);
    // Everything that accrued was sent, and every keysend landed at carol, credited once.
    expect(stopped.accruedMsat).toBe(RATE * seconds);
    const final = await eventually(
      async () => {
        const s = await alice.services.streams!.get(stream.id);
        const incoming = await carol.services.receiver!.getIncoming(stream.id);
        // A stop drains what is owed with one last keysend after stop() returns: wait for it too.
        return incoming && s.owedMsat === 0n && incoming.totalMsat === s.paidMsat
          ? { s, incoming }
          : undefined;
      },
      30_000,
      'carol to receive everything alice sent',
    );
    // Everything that accrued was paid, and that is the rate over the active time (within one tick).
    expect(final.s.paidMsat).toBe(stopped.accruedMsat);
    expect(final.s.paidMsat).toBeGreaterThanOrEqual(RATE * 20n);
    expect(balanceOf(await carol.services.ledger.requireAccount('relay'))).toBe(final.incoming.totalMsat);
    expect(final.incoming.payments).toBeGreaterThanOrEqual(19);
    // Alice's account paid exactly what was sent plus routing fees.
    const spent = 50_000_000n - balanceOf(await alice.services.ledger.requireAccount('streamer'));
    expect(spent).toBeGreaterThanOrEqual(final.s.paidMsat);

    await eventually(
      () => (events.some((e) => e.type === 'stream_lapsed') ? true : undefined),
      15_000,
      'the lapsed event',
    );
    expect((await carol.services.receiver!.getIncoming(stream.id))?.lapsed).toBe(true);
  });
});
