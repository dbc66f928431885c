import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { msat } from '../../../src/domain/msat.js';
import type { CoulombApp } from '../../../src/http/app.js';
import { buildMcpServer } from '../../../src/mcp/server.js';
import { fakeRequest } from '../../support/fake-lightning.js';
import { accountsApp, paymentsFixture } from '../../support/payments-fixture.js';

const OPERATOR = 'mcp-unit-operator-key-0123456789abcdef';
let f: Awaited<ReturnType<typeof paymentsFixture>>;
let app: CoulombApp;
let client: Client;

beforeAll(async () => {
  f = await paymentsFixture();
  // Payments above 5,000 msat wait for an operator's approval.
  await f.account('agent', 1_000_000n, {
    rules: [
      { type: 'approval_above', thresholdMsat: msat(5_000n) },
      { type: 'max_in_flight', max: 10 },
    ],
  });
  app = await accountsApp(f, OPERATOR);
  const gatewayUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const res = await fetch(`${gatewayUrl}/v1/accounts/agent/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
    body: JSON.stringify({ scopes: ['read', 'pay'] }),
  });
  const { key } = (await res.json()) as { key: string };
  const server = buildMcpServer({
    gatewayUrl,
    accountId: 'agent',
    apiKey: key,
    maxCostPerRequestMsat: 10_000n,
    maxCostPerSessionMsat: 20_000n,
  });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  client = new Client({ name: 'unit', version: '1' });
  await client.connect(b);
});
afterAll(async () => {
  await client?.close();
  await app?.close();
  f.service.stop();
});

type Result = { isError?: boolean; structuredContent?: Record<string, unknown> };
const call = async (name: string, args: Record<string, unknown>): Promise<Result> =>
  (await client.callTool({ name, arguments: args })) as Result;

describe('MCP tools', () => {
  it('a payment that needs approval surfaces as a pending state the agent polls', async () => {
    const paid = await call('pay_invoice', { invoice: fakeRequest({ amountMsat: msat(9_000n) }).request });
    expect(paid.isError).toBeFalsy();
    expect(paid.structuredContent).toMatchObject({ status: 'awaiting_approval', awaitingApproval: true });
    const polled = await call('get_payment', { paymentId: paid.structuredContent!['id'] });
    expect(polled.structuredContent).toMatchObject({ status: 'awaiting_approval', awaitingApproval: true });
  });

  it('says when to stop: caps and refused targets carry stop=true', async () => {
    const over = await call('paid_fetch', { url: 'https://example.com/', maxCostMsat: '50000' });
    expect(over.structuredContent).toMatchObject({ code: 'MAX_COST_EXCEEDED', stop: true });
    const local = await call('paid_fetch', { url: 'http://127.0.0.1:1/x', maxCostMsat: '1000' });
    expect(local.structuredContent).toMatchObject({ code: 'OUTBOUND_URL_FORBIDDEN', stop: true });
    const { tools } = await client.listTools();
    const pay = tools.find((t) => t.name === 'pay_invoice')!;
    expect(pay.description).toContain('do NOT retry');
    expect(pay.description).toContain('NEEDS_APPROVAL');
    expect(pay.annotations?.destructiveHint).toBe(true);
  });
});
