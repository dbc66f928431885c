import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createInvoice } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { openAccounts, startL402Proxy, type ProxyHandle } from '../../../src/main.js';
import { serveHttp } from '../../../src/mcp/server.js';
import { backendFor, rawLnd } from '../../support/regtest.js';
import { startUpstreamProcess } from '../../support/openai-upstream.js';

let alice: LndBackend;
let upstream: Awaited<ReturnType<typeof startUpstreamProcess>>;
let stack: { services: AccountServices; close(): Promise<void> };
let proxy: ProxyHandle;
let api: CoulombApp;
let gatewayUrl: string;
let accountId: string;
let apiKey: string;
const OPERATOR_KEY = 'mcp-integration-operator-key-0123456789';
const log = pino({ level: 'silent' });

async function operator(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(gatewayUrl + path, {
    method,
    headers: {
      authorization: `Bearer ${OPERATOR_KEY}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  expect(res.ok).toBe(true);
  return (await res.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  alice = await backendFor('alice');
  upstream = await startUpstreamProcess(2);
  const dataDir = mkdtempSync(join(tmpdir(), 'coulomb-mcp-'));
  const file = join(dataDir, 'proxy.json');
  writeFileSync(
    file,
    JSON.stringify({
      services: [
        {
          name: 'health',
          pathPrefix: '/health',
          upstream: upstream.url,
          mode: 'paid',
          pricePerRequestMsat: '1000',
          creditMsat: '3000',
          lifetimeSeconds: 3600,
        },
        {
          name: 'models',
          pathPrefix: '/v1/models',
          upstream: upstream.url,
          mode: 'paid',
          pricePerRequestMsat: '2000',
          creditMsat: '4000',
          schemes: ['mpp'],
        },
      ],
    }),
  );
  const config = {
    ...DEFAULTS,
    dataDir,
    proxy: { enabled: true, host: '127.0.0.1', port: 0, samplePort: 0, configFile: file },
  };
  stack = await openAccounts(config, alice, log);
  proxy = await startL402Proxy(config, stack.services, alice, log);
  api = await buildApp({
    backend: alice,
    operatorAuth: OperatorAuth.fromKey(OPERATOR_KEY),
    accounts: stack.services,
  });
  gatewayUrl = await api.listen({ host: '127.0.0.1', port: 0 });
  const account = await operator('POST', '/v1/accounts', { kind: 'agent', name: 'agent', tier: 'L1' });
  accountId = account['id'] as string;
  await operator('POST', `/v1/accounts/${accountId}/fund`, { amountMsat: '50000000' });
  apiKey = (await operator('POST', `/v1/accounts/${accountId}/keys`, { scopes: ['read', 'pay', 'invoice'] }))[
    'key'
  ] as string;
});
afterAll(async () => {
  await api?.close();
  await proxy?.close();
  await stack?.close();
  await upstream?.stop();
  await alice?.close();
});

async function bobInvoice(sats: number): Promise<string> {
  return (await createInvoice({ lnd: await rawLnd('bob'), tokens: sats, description: 'mcp' })).request;
}

type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown> };
const call = async (client: Client, name: string, args: Record<string, unknown>): Promise<ToolResult> =>
  (await client.callTool({ name, arguments: args })) as ToolResult;

/** What both transports must do: pay within policy, get a denial with its code, buy a paid request. */
async function exercise(client: Client): Promise<void> {
  const tools = (await client.listTools()).tools.map((t) => t.name);
  expect(tools).toEqual(
    expect.arrayContaining(['get_balance', 'pay_invoice', 'keysend', 'paid_fetch', 'stream_stop']),
  );

  const paid = await call(client, 'pay_invoice', { invoice: await bobInvoice(1000) });
  expect(paid.structuredContent).toMatchObject({ status: 'succeeded', amountMsat: '1000000' });
  expect(paid.isError).toBeFalsy();

  // Above the L1 tier's 10,000 sat a payment: the policy's code, and an instruction to stop.
  const denied = await call(client, 'pay_invoice', { invoice: await bobInvoice(20_000) });
  expect(denied.isError).toBe(true);
  expect(denied.structuredContent).toMatchObject({ code: 'PAYMENT_CAP_EXCEEDED', stop: true });

  // A paid request (L402, credit 3,000 msat) within a max cost; a dearer one is refused unpaid.
  const bought = await call(client, 'paid_fetch', { url: `${proxy.url}/health`, maxCostMsat: '5000' });
  expect(bought.isError).toBeFalsy();
  expect(bought.structuredContent).toMatchObject({ status: 200, paidMsat: '3000' });
  const mpp = await call(client, 'paid_fetch', { url: `${proxy.url}/v1/models`, maxCostMsat: '5000' });
  expect(mpp.structuredContent).toMatchObject({ status: 200, paidMsat: '2000' });
  expect(typeof mpp.structuredContent?.['receipt']).toBe('string');
  const dear = await call(client, 'paid_fetch', { url: `${proxy.url}/v1/models`, maxCostMsat: '1000' });
  expect(dear.structuredContent).toMatchObject({ code: 'MAX_COST_EXCEEDED', stop: true });
}

describe('the MCP server, driven by the official SDK client', () => {
  it('over stdio', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', 'src/cli/index.ts', 'mcp', '--url', gatewayUrl, '--account', accountId],
      env: {
        ...(process.env as Record<string, string>),
        COULOMB_API_KEY: apiKey,
        COULOMB_MCP_FETCH_ALLOW: '127.0.0.1/32',
      },
      stderr: 'inherit',
    });
    const client = new Client({ name: 'test-agent', version: '1.0.0' });
    await client.connect(transport);
    try {
      await exercise(client);
    } finally {
      await client.close();
    }
  });

  it('over Streamable HTTP, with a bearer token; loopback targets refused unless allowed', async () => {
    const token = 'mcp-http-token-0123456789abcdef';
    const options = {
      gatewayUrl,
      accountId,
      apiKey,
      maxCostPerRequestMsat: 100_000n,
      maxCostPerSessionMsat: 1_000_000n,
    };
    const served = await serveHttp(
      { ...options, fetchAllow: ['127.0.0.1/32'] },
      { host: '127.0.0.1', port: 0, token },
    );
    const strict = await serveHttp(options, { host: '127.0.0.1', port: 0, token });
    try {
      const unauthorized = await fetch(served.url, { method: 'POST', body: '{}' });
      expect(unauthorized.status).toBe(401);
      const client = new Client({ name: 'test-agent', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(served.url), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      await exercise(client);
      await client.close();

      const guarded = new Client({ name: 'test-agent', version: '1.0.0' });
      await guarded.connect(
        new StreamableHTTPClientTransport(new URL(strict.url), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      const refused = await call(guarded, 'paid_fetch', { url: `${proxy.url}/health`, maxCostMsat: '5000' });
      expect(refused.structuredContent).toMatchObject({ code: 'OUTBOUND_URL_FORBIDDEN', stop: true });
      await guarded.close();
    } finally {
      await served.close();
      await strict.close();
    }
  });
});
