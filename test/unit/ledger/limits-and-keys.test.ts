import { describe, expect, it } from 'vitest';
import { MAX_MSAT, msat } from '../../../src/domain/msat.js';
import { requestFingerprint } from '../../../src/ledger/idempotency.js';
import { Ledger } from '../../../src/ledger/ledger.js';
import { balanceOf } from '../../../src/ledger/types.js';
import { MemoryLedgerStore } from '../../support/memory-ledger-store.js';

async function fixture(store = new MemoryLedgerStore()) {
  const ledger = await Ledger.open(store, { now: () => 1_000_000 });
  if (!(await ledger.getAccount('world'))) {
    ledger.createAccount({ id: 'world', kind: 'system', name: 'lightning', allowNegative: true });
    ledger.createAccount({ id: 'other', kind: 'system', name: 'other', allowNegative: true });
    ledger.createAccount({ id: 'a', kind: 'agent', name: 'a' });
  }
  await ledger.flush();
  return { store, ledger };
}

const credit = (ledger: Ledger, from: string, amount: bigint, pending = false) =>
  ledger.transfer({ debitAccountId: from, creditAccountId: 'a', amount: msat(amount), code: 'c', pending });

describe('the ledger’s balance ceiling', () => {
  it('refuses any credit that would take a balance above MAX_MSAT, counting pending credits', async () => {
    const { ledger } = await fixture();
    await credit(ledger, 'world', MAX_MSAT - 10n).durable;
    const held = credit(ledger, 'other', 10n, true);
    expect(() => credit(ledger, 'other', 1n)).toThrow(
      expect.objectContaining({ code: 'BALANCE_LIMIT_EXCEEDED', status: 409 }),
    );
    ledger.void(held.value.id);
    await credit(ledger, 'other', 10n).durable;
    expect(balanceOf(await ledger.requireAccount('a'))).toBe(MAX_MSAT);
    expect(() => credit(ledger, 'other', 1n)).toThrow(
      expect.objectContaining({ code: 'BALANCE_LIMIT_EXCEEDED' }),
    );
  });

  it('tells before any transfer whether an account can take a credit, by the same ceiling', async () => {
    const { ledger } = await fixture();
    await credit(ledger, 'world', MAX_MSAT - 10n).durable;
    const held = credit(ledger, 'other', 5n, true);
    expect(() => ledger.assertCanCredit('a', msat(5))).not.toThrow();
    expect(() => ledger.assertCanCredit('a', msat(6))).toThrow(
      expect.objectContaining({ code: 'BALANCE_LIMIT_EXCEEDED', status: 409 }),
    );
    expect(() => credit(ledger, 'other', 6n)).toThrow(
      expect.objectContaining({ code: 'BALANCE_LIMIT_EXCEEDED' }),
    );
    ledger.void(held.value.id);
    expect(() => ledger.assertCanCredit('a', msat(10))).not.toThrow();
    expect(() => ledger.assertCanCredit('nobody', msat(1))).toThrow(
      expect.objectContaining({ code: 'ACCOUNT_NOT_FOUND' }),
    );
  });

  it('refuses a debit that would take an account that may go negative below -MAX_MSAT', async () => {
    const { ledger } = await fixture();
    await credit(ledger, 'world', MAX_MSAT).durable;
    ledger.createAccount({ id: 'b', kind: 'agent', name: 'b' });
    expect(() =>
      ledger.transfer({ debitAccountId: 'world', creditAccountId: 'b', amount: msat(1), code: 'c' }),
    ).toThrow(expect.objectContaining({ code: 'BALANCE_LIMIT_EXCEEDED' }));
    expect(balanceOf(await ledger.requireAccount('b'))).toBe(0n);
  });
});

describe('the idempotency rule of client requests', () => {
  const req = (key: string | undefined, request: unknown, accountId = 'a') => ({
    accountId,
    key,
    operation: 'test',
    request,
  });
  const create =
    (ledger: Ledger, id: string) => async (records: (ref: string) => { key: string; value: string }[]) => {
      await ledger.putRecords([{ key: `thing!${id}`, value: id }, ...records(id)]);
      return id;
    };

  it('fingerprints a request by its content, not by its field order or number types', () => {
    expect(requestFingerprint('pay', { a: 1n, b: 'x' })).toBe(requestFingerprint('pay', { b: 'x', a: '1' }));
    expect(requestFingerprint('pay', { a: 1n, c: undefined })).toBe(requestFingerprint('pay', { a: 1n }));
    expect(requestFingerprint('pay', { a: 1n })).not.toBe(requestFingerprint('invoice', { a: 1n }));
    expect(requestFingerprint('pay', { a: 1n })).not.toBe(requestFingerprint('pay', { a: 2n }));
  });

  it('runs a request once per key, replays it after a restart, and refuses another request under the key', async () => {
    const { store, ledger } = await fixture();
    let runs = 0;
    const once = (id: string, request: unknown, key = 'k', accountId = 'a') =>
      ledger.idempotent(
        req(key, request, accountId),
        (records) => {
          runs += 1;
          return create(ledger, id)(records);
        },
        (ref) => `replayed ${ref}`,
      );
    expect(await once('first', { amount: 1n })).toBe('first');
    expect(await once('second', { amount: 1n })).toBe('replayed first');
    await expect(once('third', { amount: 2n })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
      status: 409,
    });
    expect(await once('theirs', { amount: 2n }, 'k', 'b')).toBe('theirs');
    expect(runs).toBe(2);
    const { ledger: reopened } = await fixture(store);
    expect(
      await reopened.idempotent(
        req('k', { amount: 1n }),
        create(reopened, 'again'),
        (ref) => `replayed ${ref}`,
      ),
    ).toBe('replayed first');
    await expect(
      reopened.idempotent(req('k', { amount: 3n }), create(reopened, 'again'), (ref) => ref),
    ).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
  });

  it('wakes a concurrent retry of a failing request only once the first is over (no busy loop while its record is looked up on disk)', async () => {
    // A store that answers from I/O, as LevelDB does: the failed first request looks its record
    // up on the next turn of the event loop, which a retry spinning on a settled promise starves.
    class SlowStore extends MemoryLedgerStore {
      override async getRecord(key: string): Promise<string | undefined> {
        await new Promise((r) => setImmediate(r));
        return super.getRecord(key);
      }
    }
    const { ledger } = await fixture(new SlowStore());
    let runs = 0;
    const refused = (records: (ref: string) => { key: string; value: string }[]) => {
      runs += 1;
      records(`attempt-${runs}`);
      return Promise.reject(new Error('refused for funds'));
    };
    const both = [1, 2].map(() => ledger.idempotent(req('busy', { x: 1 }), refused, (ref) => ref));
    const outcomes = await Promise.allSettled(both);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(runs).toBe(2);
  });

  it('lets concurrent retries wait for the first request, and frees the key when the request fails', async () => {
    const { ledger } = await fixture();
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = async (records: (ref: string) => { key: string; value: string }[]) => {
      runs += 1;
      await gate;
      return create(ledger, `run-${runs}`)(records);
    };
    const all = Promise.all([1, 2, 3].map(() => ledger.idempotent(req('c', { x: 1 }), slow, (ref) => ref)));
    await expect(ledger.idempotent(req('c', { x: 2 }), slow, (ref) => ref)).rejects.toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
    });
    release();
    expect(await all).toEqual(['run-1', 'run-1', 'run-1']);
    expect(runs).toBe(1);

    await expect(
      ledger.idempotent(
        req('f', { x: 1 }),
        () => Promise.reject(new Error('refused')),
        (ref) => ref,
      ),
    ).rejects.toThrow('refused');
    expect(await ledger.idempotent(req('f', { x: 2 }), create(ledger, 'later'), (ref) => ref)).toBe('later');
  });
});
