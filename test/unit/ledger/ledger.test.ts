import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { Ledger, NotResidentError } from '../../../src/ledger/ledger.js';
import { availableOf, balanceOf } from '../../../src/ledger/types.js';
import { openDatabase } from '../../../src/storage/level-db.js';
import { LevelLedgerStore } from '../../../src/storage/level-ledger-store.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

async function fixture(now = () => 1_000_000) {
  const store = new MemoryLedgerStore();
  const ledger = await Ledger.open(store, { now });
  ledger.createAccount({ id: 'world', kind: 'system', name: 'lightning', allowNegative: true });
  ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
  ledger.createAccount({ id: 'b', kind: 'agent', name: 'b' });
  await ledger.transfer({
    debitAccountId: 'world',
    creditAccountId: 'a',
    amount: msat(1000),
    code: 'funding',
  }).durable;
  return { store, ledger };
}

const all = (l: Ledger) => l.listAccounts({ limit: 1_000_000 });
const sumOfBalances = async (l: Ledger): Promise<bigint> =>
  (await all(l)).reduce((s, a) => s + balanceOf(a), 0n);

describe('Ledger', () => {
  it('moves funds between accounts and keeps debits equal to credits', async () => {
    const { ledger } = await fixture();
    const t = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(300),
      code: 'internal',
    });
    expect(t.value.state).toBe('posted');
    await t.durable;
    expect(balanceOf(await ledger.requireAccount('a'))).toBe(700n);
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(300n);
    expect(balanceOf(await ledger.requireAccount('world'))).toBe(-1000n);
    expect(await sumOfBalances(ledger)).toBe(0n);
  });

  it.each([
    [{ debitAccountId: 'a', creditAccountId: 'b', amount: msat(1001) }, 'INSUFFICIENT_FUNDS'],
    [{ debitAccountId: 'a', creditAccountId: 'a', amount: msat(1) }, 'SAME_ACCOUNT'],
    [{ debitAccountId: 'a', creditAccountId: 'b', amount: msat(0) }, 'AMOUNT_MUST_BE_POSITIVE'],
    [{ debitAccountId: 'nope', creditAccountId: 'b', amount: msat(1) }, 'ACCOUNT_NOT_FOUND'],
    [{ debitAccountId: 'a', creditAccountId: 'b', amount: msat(1), timeoutMs: 5 }, 'INVALID_TIMEOUT'],
  ])('rejects bad transfer #%# with its code, changing nothing', async (req, code) => {
    const { ledger } = await fixture();
    const before = await ledger.listAccounts({ limit: 1_000_000 });
    expect(() => ledger.transfer({ ...req, code: 'x' })).toThrow(expect.objectContaining({ code }));
    expect(await ledger.listAccounts({ limit: 1_000_000 })).toEqual(before);
  });

  it('reserves with pending transfers, posts part of a reservation and returns the rest', async () => {
    const { ledger } = await fixture();
    const r = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'world',
      amount: msat(600),
      code: 'payment',
      pending: true,
    }).value;
    expect(availableOf(await ledger.requireAccount('a'))).toBe(400n);
    expect(balanceOf(await ledger.requireAccount('a'))).toBe(1000n);
    expect(() =>
      ledger.transfer({ debitAccountId: 'a', creditAccountId: 'b', amount: msat(401), code: 'x' }),
    ).toThrow(/available/);
    const posted = ledger.post(r.id, msat(550)).value;
    expect(posted).toMatchObject({ state: 'posted', amount: 550n });
    expect(availableOf(await ledger.requireAccount('a'))).toBe(450n);
    expect(() => ledger.void(r.id)).toThrow(expect.objectContaining({ code: 'TRANSFER_NOT_PENDING' }));
    expect(ledger.post(r.id, msat(550)).replayed).toBe(true);
    expect(() => ledger.post(r.id, msat(500))).toThrow(
      expect.objectContaining({ code: 'TRANSFER_NOT_PENDING' }),
    );
    const r2 = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'world',
      amount: msat(100),
      code: 'payment',
      pending: true,
    }).value;
    expect(() => ledger.post(r2.id, msat(101))).toThrow(
      expect.objectContaining({ code: 'POST_EXCEEDS_PENDING' }),
    );
    ledger.void(r2.id, 'failed');
    expect(ledger.void(r2.id).replayed).toBe(true);
    expect(availableOf(await ledger.requireAccount('a'))).toBe(450n);
    expect(await sumOfBalances(ledger)).toBe(0n);
  });

  it('voids pending transfers whose timeout passed', async () => {
    let now = 1_000_000;
    const { ledger } = await fixture(() => now);
    const hold = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(100),
      code: 'approval',
      pending: true,
      timeoutMs: 60_000,
    }).value;
    now += 59_999;
    expect(ledger.expirePending()).toEqual([]);
    now += 1;
    expect(ledger.expirePending().map((t) => t.id)).toEqual([hold.id]);
    expect(ledger.getTransferSync(hold.id)?.state).toBe('voided');
    expect(availableOf(await ledger.requireAccount('a'))).toBe(1000n);
  });

  it('returns the first transfer for a retried idempotency key, and refuses a key reused for something else', async () => {
    const { ledger } = await fixture();
    const req = {
      debitAccountId: 'a',
      creditAccountId: 'b',
      amount: msat(10),
      code: 'internal',
      idempotencyKey: 'k1',
    };
    const first = ledger.transfer(req);
    const again = ledger.transfer(req);
    expect(again.replayed).toBe(true);
    expect(again.value).toEqual(first.value);
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(10n);
    expect(() => ledger.transfer({ ...req, amount: msat(11) })).toThrow(
      expect.objectContaining({ code: 'IDEMPOTENCY_CONFLICT' }),
    );
  });

  it('refuses debits from a frozen account but still lets its pending transfers resolve', async () => {
    const { ledger } = await fixture();
    const r = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'world',
      amount: msat(100),
      code: 'payment',
      pending: true,
    }).value;
    ledger.setFrozen('a', true, 'mismatch');
    expect(() =>
      ledger.transfer({ debitAccountId: 'a', creditAccountId: 'b', amount: msat(1), code: 'x' }),
    ).toThrow(expect.objectContaining({ code: 'ACCOUNT_FROZEN', status: 403 }));
    // Money may still arrive, and the payment in flight still resolves.
    ledger.transfer({ debitAccountId: 'world', creditAccountId: 'a', amount: msat(5), code: 'invoice' });
    expect(ledger.post(r.id).value.state).toBe('posted');
    expect(balanceOf(await ledger.requireAccount('a'))).toBe(905n);
  });

  it('group-commits many concurrent transfers into few durable writes', async () => {
    const { ledger, store } = await fixture();
    const before = store.commits;
    const all = Array.from(
      { length: 500 },
      () =>
        ledger.transfer({ debitAccountId: 'world', creditAccountId: 'b', amount: msat(1), code: 'x' })
          .durable,
    );
    await Promise.all(all);
    expect(store.commits - before).toBeLessThanOrEqual(2);
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(500n);
  });

  it('stops accepting changes after a storage failure', async () => {
    const { ledger, store } = await fixture();
    store.failNext = true;
    const t = ledger.transfer({ debitAccountId: 'a', creditAccountId: 'b', amount: msat(1), code: 'x' });
    await expect(t.durable).rejects.toMatchObject({ code: 'STORAGE_FAILED' });
    expect(() =>
      ledger.transfer({ debitAccountId: 'a', creditAccountId: 'b', amount: msat(1), code: 'x' }),
    ).toThrow(expect.objectContaining({ code: 'STORAGE_FAILED' }));
  });

  it('reloads exactly what was durable, from LevelDB', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coulomb-ledger-'));
    let db = await openDatabase(dir);
    let ledger = await Ledger.open(new LevelLedgerStore(db));
    ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
    ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: 'a',
      amount: msat(5000),
      code: 'funding',
      idempotencyKey: 'f1',
    });
    const pending = ledger.transfer({
      debitAccountId: 'a',
      creditAccountId: 'world',
      amount: msat(700),
      code: 'payment',
      pending: true,
    }).value;
    await ledger.flush();
    const accounts = await ledger.listAccounts({ limit: 1_000_000 });
    await ledger.close();
    await db.close();

    db = await openDatabase(dir);
    ledger = await Ledger.open(new LevelLedgerStore(db));
    expect(
      (await ledger.listAccounts({ limit: 1_000_000 })).sort((x, y) => x.id.localeCompare(y.id)),
    ).toEqual(accounts.sort((x, y) => x.id.localeCompare(y.id)));
    expect(ledger.getTransferSync(pending.id)?.state).toBe('pending');
    // Only pending transfers come back at start; the key is read from disk before the sync step.
    expect(() =>
      ledger.transfer({
        debitAccountId: 'world',
        creditAccountId: 'a',
        amount: msat(5000),
        code: 'funding',
        idempotencyKey: 'f1',
      }),
    ).toThrow(NotResidentError);
    await ledger.ensure({ accounts: ['world', 'a'], keys: ['f1'] });
    const replay = ledger.transfer({
      debitAccountId: 'world',
      creditAccountId: 'a',
      amount: msat(5000),
      code: 'funding',
      idempotencyKey: 'f1',
    });
    expect(replay.replayed).toBe(true);
    const journal = await ledger.journal('a', { limit: 10 });
    expect(journal.map((e) => e.type)).toEqual(['transfer_created', 'transfer_created', 'account_created']);
    await ledger.close();
    await db.close();
  });
});

describe('Ledger under any interleaving', () => {
  type Op = {
    kind: 'transfer' | 'reserve' | 'post' | 'void';
    from: number;
    to: number;
    amount: number;
    pick: number;
  };
  const op = fc.record({
    kind: fc.constantFrom('transfer', 'reserve', 'post', 'void'),
    from: fc.integer({ min: 0, max: 2 }),
    to: fc.integer({ min: 0, max: 2 }),
    amount: fc.integer({ min: 1, max: 400 }),
    pick: fc.nat(),
  }) as fc.Arbitrary<Op>;

  it('never overdraws an account, keeps the books balanced, and reloads the same state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(op, { minLength: 1, maxLength: 40 }), async (s, ops) => {
        const store = new MemoryLedgerStore();
        const ledger = await Ledger.open(store);
        ledger.createAccount({ id: 'world', kind: 'system', name: 'w', allowNegative: true });
        const ids = ['x', 'y', 'z'];
        for (const id of ids) ledger.createAccount({ id, kind: 'agent', name: id });
        for (const id of ids)
          ledger.transfer({
            debitAccountId: 'world',
            creditAccountId: id,
            amount: msat(500),
            code: 'funding',
          });
        const reservations: string[] = [];
        // Each operation runs as its own async task; the scheduler picks the interleaving.
        const tasks = ops.map((o) =>
          s.schedule(Promise.resolve(o)).then(async (o) => {
            try {
              if (o.kind === 'transfer' || o.kind === 'reserve') {
                const t = ledger.transfer({
                  debitAccountId: ids[o.from]!,
                  creditAccountId: o.kind === 'reserve' ? 'world' : ids[o.to]!,
                  amount: msat(o.amount),
                  code: o.kind,
                  pending: o.kind === 'reserve',
                });
                if (o.kind === 'reserve') reservations.push(t.value.id);
                await t.durable;
              } else if (reservations.length > 0) {
                const id = reservations[o.pick % reservations.length]!;
                const t = ledger.getTransferSync(id)!;
                if (t.state !== 'pending') return;
                const r =
                  o.kind === 'post'
                    ? ledger.post(id, msat(Math.max(1, Number(t.amount) - (o.amount % Number(t.amount)))))
                    : ledger.void(id);
                await r.durable;
              }
            } catch (err) {
              if (
                (err as { code?: string }).code !== 'INSUFFICIENT_FUNDS' &&
                (err as { code?: string }).code !== 'SAME_ACCOUNT'
              )
                throw err;
            }
            for (const id of ids)
              expect(availableOf(await ledger.requireAccount(id))).toBeGreaterThanOrEqual(0n);
          }),
        );
        await s.waitAll();
        await Promise.all(tasks);
        await ledger.flush();
        expect(await sumOfBalances(ledger)).toBe(0n);
        const pendingSum = (await all(ledger)).reduce(
          (acc, a) => acc + a.debitsPending - a.creditsPending,
          0n,
        );
        expect(pendingSum).toBe(0n);
        const reloaded = await Ledger.open(store);
        expect(await all(reloaded)).toEqual(await all(ledger));
      }),
      { numRuns: 200 },
    );
  });
});
