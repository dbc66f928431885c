import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import { TaskAuctions } from '../../../src/market/auctions.js';
import { EventBus } from '../../../src/payments/events.js';
import { accountsApp } from '../../support/payments-fixture.js';
import { marketFixture } from '../market/fixture.js';

const KEY = 'auction-routes-operator-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };

/** The auction routes over the market fixture; `keyOf` makes an account (if new) and a key for it. */
async function routes() {
  const m = await marketFixture();
  const auctions = new TaskAuctions({
    ledger: m.ledger,
    tasks: m.market,
    registry: m.registry,
    publish: () => undefined,
    log: pino({ level: 'silent' }),
  });
  const app = await accountsApp({ ...m, events: new EventBus() }, KEY, {
    escrow: m.escrow,
    market: m.market,
    registry: m.registry,
    auctions,
  });
  const keyOf = async (id: string, scopes: string[]) => {
    if (!(await m.ledger.getAccount(id)))
      expect(
        (
          await app.inject({
            method: 'POST',
            url: '/v1/accounts',
            headers: auth,
            payload: { id, kind: 'agent', name: id, tier: 'L2' },
          })
        ).statusCode,
      ).toBe(201);
    const res = await app.inject({
      method: 'POST',
      url: `/v1/accounts/${id}/keys`,
      headers: auth,
      payload: { scopes },
    });
    expect(res.statusCode).toBe(201);
    return { authorization: `Bearer ${(res.json() as { key: string }).key}` };
  };
  const openOne = async () => {
    const opened = await app.inject({
      method: 'POST',
      url: '/v1/accounts/payer/auctions',
      headers: auth,
      payload: {
        title: 'label',
        capabilities: ['vision'],
        maxRewardMsat: '1000',
        bidSeconds: 60,
        maxPromisedSeconds: 600,
      },
    });
    expect(opened.statusCode).toBe(201);
    return (opened.json() as { id: string }).id;
  };
  const close = async () => {
    await app.close();
    m.market.stop();
    m.escrow.stop();
  };
  return { ...m, app, auctions, keyOf, openOne, close };
}

describe('auction routes', () => {
  it('opens, takes bids, ranks them, awards by the buyer, and refuses bad input with stable codes', async () => {
    const { app, openOne, close } = await routes();
    try {
      const id = await openOne();
      const bid = await app.inject({
        method: 'POST',
        url: `/v1/accounts/payee/auctions/${id}/bids`,
        headers: auth,
        payload: { priceMsat: '700', promisedSeconds: 300 },
      });
      expect(bid.statusCode).toBe(200);
      const lacking = await app.inject({
        method: 'POST',
        url: `/v1/accounts/other/auctions/${id}/bids`,
        headers: auth,
        payload: { priceMsat: '700', promisedSeconds: 300 },
      });
      expect(lacking.statusCode).toBe(403);
      expect(lacking.json()).toMatchObject({ error: { code: 'MISSING_CAPABILITY' } });
      const tooDear = await app.inject({
        method: 'POST',
        url: `/v1/accounts/payee/auctions/${id}/bids`,
        headers: auth,
        payload: { priceMsat: '1001', promisedSeconds: 300 },
      });
      expect(tooDear.json()).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
      const open = await app.inject({
        method: 'GET',
        url: '/v1/accounts/payee/auctions?open=true&capability=vision',
        headers: auth,
      });
      expect(open.json()).toMatchObject({ auctions: [{ id }] });
      const shown = await app.inject({
        method: 'GET',
        url: `/v1/accounts/payer/auctions/${id}`,
        headers: auth,
      });
      expect(shown.json()).toMatchObject({
        ranking: [{ accountId: 'payee', score: 50 * 700_000 + 30 * 500_000, reputation: { completed: 0 } }],
      });
      const awarded = await app.inject({
        method: 'POST',
        url: `/v1/accounts/payer/auctions/${id}/award`,
        headers: auth,
        payload: {},
      });
      expect(awarded.statusCode).toBe(200);
      expect(awarded.json()).toMatchObject({ state: 'awarded', winnerAccountId: 'payee' });
      const again = await app.inject({
        method: 'POST',
        url: `/v1/accounts/payer/auctions/${id}/award`,
        headers: auth,
        payload: {},
      });
      expect(again.statusCode).toBe(409);
      const missing = await app.inject({
        method: 'GET',
        url: '/v1/accounts/payer/auctions/00000000-0000-0000-0000-000000000000',
        headers: auth,
      });
      expect(missing.statusCode).toBe(404);
      expect(missing.json()).toMatchObject({ error: { code: 'AUCTION_NOT_FOUND' } });
    } finally {
      await close();
    }
  });

  it('shows an auction whole to its publisher and the operator; a bidder sees only its own bid', async () => {
    const r = await routes();
    try {
      await r.registry.advertise('other', {
        title: 'labelling too',
        description: '',
        capabilities: ['vision'],
        priceMsat: msat(900),
        unit: 'task',
      });
      const id = await r.openOne();
      await r.auctions.bid(id, 'payee', msat(700), 300);
      await r.auctions.bid(id, 'other', msat(600), 300);
      const rebid = await r.app.inject({
        method: 'POST',
        url: `/v1/accounts/payee/auctions/${id}/bids`,
        headers: await r.keyOf('payee', ['invoice']),
        payload: { priceMsat: '700', promisedSeconds: 300 },
      });
      expect((rebid.json() as { bids: { accountId: string }[] }).bids.map((b) => b.accountId)).toEqual([
        'payee',
      ]);
      const show = async (account: string, headers: Record<string, string>) =>
        r.app.inject({ method: 'GET', url: `/v1/accounts/${account}/auctions/${id}`, headers });
      const bidders = (res: { json: () => unknown }) => {
        const body = res.json() as {
          auction: { bids: { accountId: string }[] };
          ranking: { accountId: string }[];
        };
        return [
          body.auction.bids.map((b) => b.accountId).sort(),
          body.ranking.map((b) => b.accountId).sort(),
        ];
      };
      expect(bidders(await show('payer', await r.keyOf('payer', ['read'])))).toEqual([
        ['other', 'payee'],
        ['other', 'payee'],
      ]);
      expect(bidders(await show('payer', auth))).toEqual([
        ['other', 'payee'],
        ['other', 'payee'],
      ]);
      expect(bidders(await show('payee', await r.keyOf('payee', ['read'])))).toEqual([['payee'], ['payee']]);
      // An account that did not bid sees the open auction (as in the open listing) without bids.
      const strangerKey = await r.keyOf('stranger', ['read']);
      expect(bidders(await show('stranger', strangerKey))).toEqual([[], []]);
      const listed = await r.app.inject({
        method: 'GET',
        url: '/v1/accounts/payee/auctions?open=true',
        headers: await r.keyOf('payee', ['read']),
      });
      expect((listed.json() as { auctions: { bids: { accountId: string }[] }[] }).auctions[0]!.bids).toEqual([
        expect.objectContaining({ accountId: 'payee' }),
      ]);
      // Once awarded: the winner sees its bid and its task; a closed auction is not found for others.
      await r.auctions.award(id, { kind: 'account', id: 'payer' }, 'payee');
      const won = await show('payee', await r.keyOf('payee', ['read']));
      expect(won.json()).toMatchObject({
        auction: { state: 'awarded', winnerAccountId: 'payee', bids: [{ accountId: 'payee' }] },
      });
      const lost = await show('other', await r.keyOf('other', ['read']));
      expect(lost.statusCode).toBe(200);
      expect((lost.json() as { auction: { bids: unknown[]; taskId?: string } }).auction).toMatchObject({
        state: 'awarded',
        bids: [{ accountId: 'other' }],
      });
      expect(
        (lost.json() as { auction: { taskId?: string; winnerAccountId?: string } }).auction.taskId,
      ).toBeUndefined();
      const closed = await show('stranger', strangerKey);
      expect(closed.statusCode).toBe(404);
      expect(closed.json()).toMatchObject({ error: { code: 'AUCTION_NOT_FOUND' } });
    } finally {
      await r.close();
    }
  });

  it("an account named like an internal actor (sweep, operator) cannot award another account's auction", async () => {
    const r = await routes();
    try {
      const id = await r.openOne();
      await r.auctions.bid(id, 'payee', msat(700), 300);
      for (const name of ['sweep', 'operator']) {
        const res = await r.app.inject({
          method: 'POST',
          url: `/v1/accounts/${name}/auctions/${id}/award`,
          headers: await r.keyOf(name, ['pay']),
          payload: {},
        });
        expect(res.statusCode).toBe(403);
        expect(res.json()).toMatchObject({ error: { code: 'TASK_FORBIDDEN' } });
      }
      expect((await r.auctions.get(id)).state).toBe('open');
    } finally {
      await r.close();
    }
  });
});
