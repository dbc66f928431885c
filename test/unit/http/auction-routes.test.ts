import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TaskAuctions } from '../../../src/market/auctions.js';
import { EventBus } from '../../../src/payments/events.js';
import { accountsApp } from '../../support/payments-fixture.js';
import { marketFixture } from '../market/fixture.js';

const KEY = 'auction-routes-operator-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };

describe('auction routes', () => {
  it('opens, takes bids, ranks them, awards by the buyer, and refuses bad input with stable codes', async () => {
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
    try {
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
      const id = (opened.json() as { id: string }).id;
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
      await app.close();
      m.market.stop();
      m.escrow.stop();
    }
  });
});
