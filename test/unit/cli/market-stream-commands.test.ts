import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EscrowService } from '../../../src/escrow/service.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { ServiceRegistry } from '../../../src/market/registry.js';
import { TaskMarket } from '../../../src/market/tasks.js';
import { StreamReceiver, StreamsService } from '../../../src/streams/index.js';
import { cliAgainst } from '../../support/cli.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OP = 'cli-market-operator-key-0123456789abcdef';
let app: CoulombApp;
let url: string;
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let streams: StreamsService;

beforeAll(async () => {
  f = await paymentsFixture();
  const log = pino({ level: 'silent' });
  const publish = (id: string, e: Parameters<typeof f.events.publish>[1]) => f.events.publish(id, e);
  const escrow = new EscrowService(f.ledger, f.lightning, f.service, publish, log, { blockPollMs: 3600_000 });
  await escrow.start();
  const registry = new ServiceRegistry(f.ledger);
  const market = new TaskMarket(f.ledger, escrow, registry, publish, log);
  const receiver = new StreamReceiver({ ledger: f.ledger, nodeId: () => f.service.nodeId, publish, log });
  streams = new StreamsService({ ledger: f.ledger, payments: f.service, publish, log, inboxes: receiver });
  await streams.start();
  app = await accountsApp(f, OP, { escrow, market, registry, streams, receiver });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
  await f.account('buyer', 10_000_000n);
  await f.account('seller', 0n);
});
afterAll(async () => {
  await streams.stop();
  f.service.stop();
  await app.close();
});

const coulomb = cliAgainst(() => url, OP);

describe('coulomb CLI: escrow, tasks, offers, streams', { timeout: 60_000 }, () => {
  it('locks, approves and releases an account-funded escrow', async () => {
    const e = await coulomb('escrow', 'create', 'buyer', '250000', '--payee', 'seller', '--from-account');
    expect(e).toMatchObject({ state: 'funded', funding: 'account', amountMsat: '250000' });
    expect(await coulomb('escrow', 'approve', 'buyer', e['id'] as string)).toMatchObject({
      state: 'released',
    });
    expect(await coulomb('account', 'show', 'seller')).toMatchObject({ balanceMsat: '250000' });
  });

  it('runs a task from offer to acceptance and shows the reputation', async () => {
    await coulomb('offer', 'add', 'seller', 'labelling', '1000', '--capability', 'vision', '--unit', 'task');
    const t = await coulomb('task', 'publish', 'buyer', 'label images', '100000', '--capability', 'vision');
    const listed = await coulomb('task', 'list', 'seller', '--state', 'open', '--capability', 'vision');
    expect((listed['tasks'] as { id: string }[]).map((x) => x.id)).toContain(t['id']);
    await coulomb('task', 'claim', 'seller', t['id'] as string);
    await coulomb('task', 'submit', 'seller', t['id'] as string, 'labels.csv');
    expect(await coulomb('task', 'accept', 'buyer', t['id'] as string)).toMatchObject({ state: 'completed' });
    expect(await coulomb('reputation', 'buyer', 'seller')).toMatchObject({ completed: 1 });
  });

  it('starts, lists and stops a stream between two accounts', async () => {
    const s = await coulomb('stream', 'start', 'buyer', '--to-account', 'seller', '--rate', '1000');
    expect(s).toMatchObject({ state: 'active', mode: 'local', rateMsat: '1000' });
    const list = await coulomb('stream', 'list', 'buyer');
    expect((list['streams'] as { id: string }[]).map((x) => x.id)).toContain(s['id']);
    expect(await coulomb('stream', 'stop', 'buyer', s['id'] as string)).toMatchObject({ state: 'stopped' });
  });
});
