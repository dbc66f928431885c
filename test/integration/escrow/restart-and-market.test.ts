import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pay } from 'ln-service';
import { afterAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../../support/gateway-process.js';
import { eventually, rawLnd } from '../../support/regtest.js';

const OPERATOR = 'escrow-restart-operator-key-0123456789';
const gateway = new GatewayProcess(mkdtempSync(join(tmpdir(), 'coulomb-escrow-restart-')), OPERATOR);
afterAll(() => gateway.kill9());

async function as(url: string, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('escrow across a gateway crash, and the task market over HTTP', () => {
  it('a gateway killed between funded and released resumes and releases correctly', async () => {
    let url = await gateway.start();
    for (const id of ['r-payer', 'r-payee'])
      expect(
        (await gateway.api(url, 'POST', '/v1/accounts', { id, kind: 'agent', name: id, tier: 'L2' })).status,
      ).toBe(201);
    const created = await gateway.api(url, 'POST', '/v1/accounts/r-payer/escrows', {
      payeeAccountId: 'r-payee',
      amountMsat: '25000000',
      condition: { type: 'approval' },
    });
    expect(created.status).toBe(201);
    const id = created.json['id'] as string;
    const outcome = pay({ lnd: await rawLnd('bob'), request: created.json['request'] as string }).then(
      () => 'paid',
      () => 'failed',
    );
    const escrowState = async () =>
      (await gateway.api(url, 'GET', `/v1/accounts/r-payer/escrows/${id}`)).json['state'] as string;
    await eventually(async () => ((await escrowState()) === 'funded' ? true : undefined), 30_000, 'funded');

    await gateway.kill9();
    url = await gateway.start();
    expect(await escrowState()).toBe('funded');
    const approved = await gateway.api(url, 'POST', `/v1/accounts/r-payer/escrows/${id}/approve`, {});
    expect(approved.status).toBe(200);
    expect(approved.json['state']).toBe('released');
    expect(await outcome).toBe('paid');
    expect((await gateway.api(url, 'GET', '/v1/accounts/r-payee')).json['balanceMsat']).toBe('25000000');
    // A second approval is harmless, and nothing is credited twice.
    expect(
      (await gateway.api(url, 'POST', `/v1/accounts/r-payer/escrows/${id}/approve`, {})).json['state'],
    ).toBe('released');
    expect((await gateway.api(url, 'GET', '/v1/accounts/r-payee')).json['balanceMsat']).toBe('25000000');
    await gateway.kill9();
  });

  it('task market: happy path and dispute path with reputation, each party acting with its own key', async () => {
    const url = await gateway.start();
    const key = async (id: string) => {
      await gateway.api(url, 'POST', '/v1/accounts', { id, kind: 'agent', name: id, tier: 'L2' });
      const k = await gateway.api(url, 'POST', `/v1/accounts/${id}/keys`, {
        scopes: ['pay', 'invoice', 'read'],
      });
      return k.json['key'] as string;
    };
    const pub = await key('m-publisher');
    const agent = await key('m-agent');
    await gateway.api(url, 'POST', '/v1/accounts/m-publisher/fund', { amountMsat: '1000000' });
    expect(
      (
        await as(url, agent, 'POST', '/v1/accounts/m-agent/offers', {
          title: 'labelling',
          capabilities: ['vision'],
          priceMsat: '1000',
          unit: 'task',
        })
      ).status,
    ).toBe(201);
    const offers = await as(url, pub, 'GET', '/v1/accounts/m-publisher/registry?capability=vision');
    expect((offers.json['offers'] as { accountId: string }[]).map((o) => o.accountId)).toContain('m-agent');

    const publish = async (title: string) => {
      const t = await as(url, pub, 'POST', '/v1/accounts/m-publisher/tasks', {
        title,
        capabilities: ['vision'],
        rewardMsat: '300000',
        deadlineSeconds: 600,
      });
      expect(t.status).toBe(201);
      return t.json['id'] as string;
    };
    const happy = await publish('label images');
    const open = await as(url, agent, 'GET', '/v1/accounts/m-agent/tasks?state=open&capability=vision');
    expect((open.json['tasks'] as { id: string }[]).map((t) => t.id)).toContain(happy);
    // An agent key cannot act for the publisher.
    expect((await as(url, agent, 'POST', `/v1/accounts/m-publisher/tasks/${happy}/accept`, {})).status).toBe(
      403,
    );
    expect(
      (await as(url, agent, 'POST', `/v1/accounts/m-agent/tasks/${happy}/claim`, {})).json['state'],
    ).toBe('claimed');
    expect(
      (await as(url, agent, 'POST', `/v1/accounts/m-agent/tasks/${happy}/submit`, { result: 'labels.csv' }))
        .json['state'],
    ).toBe('submitted');
    expect(
      (await as(url, pub, 'POST', `/v1/accounts/m-publisher/tasks/${happy}/accept`, {})).json['state'],
    ).toBe('completed');
    expect((await as(url, agent, 'GET', '/v1/accounts/m-agent')).json['balanceMsat']).toBe('300000');

    const disputed = await publish('label more images');
    await as(url, agent, 'POST', `/v1/accounts/m-agent/tasks/${disputed}/claim`, {});
    await as(url, agent, 'POST', `/v1/accounts/m-agent/tasks/${disputed}/submit`, { result: 'blurry.csv' });
    const rejected = await as(url, pub, 'POST', `/v1/accounts/m-publisher/tasks/${disputed}/reject`, {
      reason: 'labels are wrong',
    });
    expect(rejected.json['state']).toBe('disputed');
    expect(
      (await as(url, pub, 'POST', `/v1/tasks/${disputed}/resolve`, { winner: 'publisher' })).status,
    ).toBe(403);
    const resolved = await gateway.api(url, 'POST', `/v1/tasks/${disputed}/resolve`, { winner: 'publisher' });
    expect(resolved.json).toMatchObject({ state: 'resolved', resolvedFor: 'publisher' });
    const publisher = (await as(url, pub, 'GET', '/v1/accounts/m-publisher')).json;
    expect([publisher['balanceMsat'], publisher['availableMsat']]).toEqual(['700000', '700000']);
    const rep = await as(url, pub, 'GET', '/v1/accounts/m-publisher/reputation/m-agent');
    expect(rep.json).toMatchObject({ accountId: 'm-agent', completed: 1, disputed: 1, lost: 1 });
    expect((await as(url, agent, 'GET', '/v1/accounts/m-agent/reputation/m-publisher')).json).toMatchObject({
      completed: 1,
      disputed: 1,
      lost: 0,
    });
    await gateway.kill9();
  });
});
