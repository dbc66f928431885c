import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoice, pay } from 'ln-service';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsole } from '../../../scripts/build-console.js';
import { decodeV2 } from '../../../src/l402/macaroon.js';
import { launchChromium } from '../../support/browser.js';
import { PaidStack } from '../../support/paid-stack.js';
import { eventually, rawLnd } from '../../support/regtest.js';

/**
 * The operator console in a real browser (Debian's chromium) against a gateway on regtest alice:
 * every action goes through the pages, and is checked against the API and the proxy.
 */
const OPERATOR_KEY = 'console-e2e-operator-key-0123456789abcdef';
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'console');
const consoleDir = mkdtempSync(join(tmpdir(), 'coulomb-console-ui-'));

const s = new PaidStack({
  operatorKey: OPERATOR_KEY,
  consoleDir,
  seed: (upstream) => [
    {
      name: 'weather',
      pathPrefix: '/health',
      upstream,
      mode: 'paid',
      pricePerRequestMsat: '1000',
      creditMsat: '5000',
      lifetimeSeconds: 3600,
    },
  ],
});

let browser: Browser;
let page: Page;
let base = '';

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await buildConsole(consoleDir);
  await s.open();
  base = await s.api.listen({
    host: '127.0.0.1',
    port: Number(process.env['COULOMB_TEST_GATEWAY_PORT'] ?? 0),
  });
  browser = await launchChromium();
  page = await (
    await browser.newContext({ acceptDownloads: true, viewport: { width: 1200, height: 900 } })
  ).newPage();
});
afterAll(async () => {
  await browser?.close();
  await s.close();
});

const api = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: object) => {
  const res = await s.api.inject({
    method,
    url,
    headers: { authorization: `Bearer ${OPERATOR_KEY}` },
    ...(payload ? { payload } : {}),
  });
  return { status: res.statusCode, body: res.json<Record<string, unknown>>() };
};
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
const figure = (id: string) => page.locator(`[data-figure="${id}"]`);
const nav = (label: string) => page.getByRole('link', { name: label, exact: true }).click();

let accountId = '';

describe('the operator console in a browser, on regtest', () => {
  it('refuses a wrong key, logs in with the operator key, and shows the real node figures', async () => {
    await page.goto(`${base}/console`);
    await page.fill('input[name="key"]', 'not-the-key');
    await page.click('button[type="submit"]');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('UNAUTHORIZED');
    await shot('login');
    await page.fill('input[name="key"]', OPERATOR_KEY);
    await page.click('button[type="submit"]');

    const node = await s.alice.getNodeInfo();
    await expect.poll(() => figure('alias').textContent()).toBe(node.alias);
    expect(Number(await figure('blockHeight').textContent())).toBeGreaterThanOrEqual(node.blockHeight);
    expect(await figure('activeChannels').textContent()).toBe(String(node.activeChannels));
    expect(node.activeChannels).toBeGreaterThan(0);
    expect(await figure('lightning').textContent()).toBe('connected');
    expect(await figure('coverage').textContent()).toMatch(/^(inf|\d+\.\d+)$/);
    expect(await page.locator('.mono').first().textContent()).toBe(node.pubkey);
    // The operator key is nowhere in the browser's reach: the session is an HttpOnly cookie.
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([
      expect.objectContaining({ name: 'coulomb_session', httpOnly: true, sameSite: 'Strict' }),
    ]);
    expect(await page.evaluate<string>('document.cookie + JSON.stringify({ ...localStorage })')).toBe('{}');
    await shot('overview');
  });

  it('creates an account, sets its tier and funds it', async () => {
    await nav('Accounts');
    await page.fill('input[name="name"]', 'console e2e agent');
    await page.selectOption('select[name="tier"]', 'L0');
    await page.click('text=Create account');
    await expect.poll(() => page.locator('.detail h3').textContent()).toContain('console e2e agent');
    accountId = (await page.locator('.detail h3 .mono').textContent()) ?? '';
    expect((await api('GET', `/v1/accounts/${accountId}`)).body).toMatchObject({
      name: 'console e2e agent',
      tier: 'L0',
    });

    await page.selectOption('select[name="set-tier"]', 'L1');
    await page.click('text=Set tier');
    await expect.poll(() => figure('tier').textContent()).toBe('L1');
    expect((await api('GET', `/v1/accounts/${accountId}`)).body).toMatchObject({ tier: 'L1' });

    await page.fill('input[name="amount"]', '50000000');
    await page.click('button:text-is("Fund")');
    await expect.poll(() => figure('balance').textContent()).toBe('50,000 sat');
    expect((await api('GET', `/v1/accounts/${accountId}`)).body).toMatchObject({ balanceMsat: '50000000' });
    await expect.poll(() => page.locator('.detail tbody tr').count()).toBeGreaterThan(1);
    await shot('accounts');
  });

  it('finds the account by name or id prefix in the search, paged on the server', async () => {
    const rows = page.locator('table.accounts tbody tr');
    await page.fill('input[name="search"]', 'CONSOLE E2E');
    await page.click('button:text-is("Search")');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-row')).toBe(accountId);
    await page.selectOption('select[name="search-by"]', 'id');
    await page.fill('input[name="search"]', accountId.slice(0, 8));
    await page.click('button:text-is("Search")');
    await expect.poll(() => rows.first().getAttribute('data-row')).toBe(accountId);
    await page.fill('input[name="search"]', 'no-account-has-this-id');
    await page.click('button:text-is("Search")');
    await expect.poll(() => rows.count()).toBe(0);
    expect(await page.locator('text=no account').count()).toBe(1);
    await shot('account-search');
    await page.fill('input[name="search"]', '');
    await page.click('button:text-is("Search")');
    await expect.poll(() => rows.count()).toBeGreaterThan(0);
  });

  it("edits the account's rules: a validation error is shown, then the rules are saved", async () => {
    const rules = page.locator('.rules [data-rule]');
    // The L1 tier's rules, shown rule by rule.
    await expect.poll(() => rules.count()).toBeGreaterThan(0);
    while ((await rules.count()) > 0) await rules.first().getByRole('button', { name: 'Remove' }).click();
    await page.click('button:text-is("Add rule")');
    await page.fill('input[name="rule-0-maxMsat"]', 'ten sat');
    await page.click('button:text-is("Save rules")');
    await expect.poll(() => page.locator('.rules [role="alert"]').textContent()).toContain('INVALID_AMOUNT');
    await page.fill('input[name="rule-0-maxMsat"]', '10000000');
    await page.click('button:text-is("Add rule")');
    await page.selectOption('select[name="rule-1-type"]', 'budget');
    await page.selectOption('select[name="rule-1-window"]', 'week');
    await page.fill('input[name="rule-1-maxMsat"]', '40000000');
    await page.click('button:text-is("Add rule")');
    await page.selectOption('select[name="rule-2-type"]', 'payee_allowlist');
    await page.fill('input[name="rule-2-domains"]', 'example.com, api.example.org');
    await page.click('button:text-is("Add rule")');
    await page.selectOption('select[name="rule-3-type"]', 'approval_above');
    await page.fill('input[name="rule-3-thresholdMsat"]', '5000000');
    await page.click('button:text-is("Save rules")');
    await expect.poll(() => page.locator('.rules .notice').textContent()).toBe('saved');
    expect(await page.locator('.rules [role="alert"]').count()).toBe(0);
    await expect.poll(() => figure('tier').textContent()).toBe('rules');
    expect((await api('GET', `/v1/accounts/${accountId}/policy`)).body).toEqual({
      rules: [
        { type: 'max_per_payment', maxMsat: '10000000' },
        { type: 'budget', window: 'week', maxMsat: '40000000' },
        { type: 'payee_allowlist', domains: ['example.com', 'api.example.org'] },
        { type: 'approval_above', thresholdMsat: '5000000' },
      ],
    });
    await shot('rules');
  });

  it('creates an API key shown once and revokes it; freezes and unfreezes the account', async () => {
    await page.check('input[name="scope-pay"]');
    await page.click('text=Create key');
    const key = (await page.locator('[data-new-key]').textContent()) ?? '';
    expect(key).toMatch(/^ck_/);
    const asKey = () =>
      s.api.inject({ url: `/v1/accounts/${accountId}`, headers: { authorization: `Bearer ${key}` } });
    expect((await asKey()).statusCode).toBe(200);
    const row = page.locator('tr[data-key]');
    await expect.poll(() => row.textContent()).toContain('read, pay');
    await row.getByRole('button', { name: 'Revoke key' }).click();
    await expect.poll(() => row.textContent()).toContain('revoked');
    expect((await asKey()).statusCode).toBe(401);

    await page.click('button:text-is("Freeze")');
    await expect.poll(() => figure('frozen').textContent()).toBe('yes');
    expect((await api('GET', `/v1/accounts/${accountId}`)).body).toMatchObject({ frozen: true });
    await page.click('button:text-is("Unfreeze")');
    await expect.poll(() => figure('frozen').textContent()).toBe('no');
    expect((await api('GET', `/v1/accounts/${accountId}`)).body).toMatchObject({ frozen: false });
  });

  it('shows a frozen account and its alert on the overview', async () => {
    expect((await api('POST', `/v1/accounts/${accountId}/freeze`)).status).toBe(200);
    await nav('Overview');
    await expect
      .poll(() => page.locator('[data-alert="ACCOUNTS_FROZEN"]').textContent())
      .toContain('1 account is frozen');
    await expect.poll(() => page.locator(`.frozen-accounts tr[data-row="${accountId}"]`).count()).toBe(1);
    expect(await page.locator('[data-alert="LND_DISCONNECTED"]').count()).toBe(0);
    await shot('overview-alerts');
    expect((await api('POST', `/v1/accounts/${accountId}/unfreeze`)).status).toBe(200);
    await page.reload();
    await expect.poll(() => page.locator('.alerts-none').count()).toBe(1);
    expect(await page.locator('.frozen-accounts tr').count()).toBe(0);
    await nav('Accounts');
    await page.locator('table.accounts tr', { hasText: accountId }).click();
    await expect.poll(() => page.locator('.detail h3').textContent()).toContain(accountId);
  });

  it('shows a held payment in the live feed and approves it in the queue; the payment goes out', async () => {
    const policy = await api('PUT', `/v1/accounts/${accountId}/policy`, {
      rules: [{ type: 'approval_above', thresholdMsat: '1000' }],
    });
    expect(policy.status).toBe(200);
    const invoice = await createInvoice({ lnd: await rawLnd('bob'), tokens: 20, description: 'console e2e' });
    const held = await api('POST', `/v1/accounts/${accountId}/payments`, { request: invoice.request });
    expect(held.status).toBe(202);
    const paymentId = held.body['id'] as string;
    // The account's page is open: its live feed shows the payment waiting for approval.
    await expect.poll(() => page.locator('.account-feed').textContent()).toContain(paymentId);

    await nav('Overview');
    await expect
      .poll(() => page.locator('[data-alert="APPROVALS_WAITING"]').textContent())
      .toContain('1 payment waits for approval');
    await nav('Approvals');
    const row = page.locator('tr[data-approval]', { hasText: accountId });
    await expect.poll(() => row.count()).toBe(1);
    await shot('approvals');
    await row.getByRole('button', { name: 'Approve' }).click();
    await expect.poll(() => page.locator('tr[data-approval]').count()).toBe(0);
    const done = await eventually(async () => {
      const p = await api('GET', `/v1/accounts/${accountId}/payments/${paymentId}`);
      return p.body['status'] === 'succeeded' ? p.body : undefined;
    });
    expect(done).toMatchObject({ amountMsat: '20000' });
    // The operator-wide feed, on every page, saw it go out.
    const sent = page
      .locator('.operator-feed li', { hasText: paymentId })
      .filter({ hasText: '"status":"succeeded"' });
    await expect.poll(() => sent.count()).toBeGreaterThan(0);

    // Every account's payments, on their own page: status, fee and hash.
    await nav('Payments');
    const listed = page.locator(`.all-payments tr[data-row="${paymentId}"]`);
    await expect.poll(() => listed.textContent()).toContain('succeeded');
    expect(await listed.textContent()).toContain(accountId);
    expect(await listed.textContent()).toContain('20 sat');
    expect(await listed.locator('[title]').getAttribute('title')).toBe(done['paymentHash']);
    await shot('payments');
  });

  it('revokes an L402 credential; the next proxied request with it is refused', async () => {
    const challenge = await fetch(`${s.proxy.url}/health`);
    expect(challenge.status).toBe(402);
    const m = /L402 macaroon="([^"]+)", invoice="([^"]+)"/.exec(challenge.headers.get('www-authenticate')!)!;
    const paid = await pay({ lnd: await rawLnd('bob'), request: m[2]! });
    const authorization = `L402 ${m[1]}:${paid.secret}`;
    const tokenId = decodeV2(Buffer.from(m[1]!, 'base64')).identifier.subarray(34).toString('hex');
    expect((await fetch(`${s.proxy.url}/health`, { headers: { authorization } })).status).toBe(200);

    const stats = await eventually(async () => {
      const r = await api('GET', '/v1/proxy/services/weather/stats?period=hour');
      return (r.body['totals'] as { paidRequests: number }).paidRequests === 1 ? r.body : undefined;
    });
    expect(stats['totals']).toEqual({ requests: 2, paidRequests: 1, challenges: 1, revenueMsat: '1000' });

    await nav('Paid services');
    await page.locator('tr', { hasText: '/health' }).click();
    await expect.poll(() => figure('revenue').textContent()).toBe('1 sat');
    expect(await figure('paidRequests').textContent()).toBe('1');
    expect(await figure('challenges').textContent()).toBe('1');
    expect(await page.locator('.chart canvas').count()).toBe(1);
    const row = page.locator(`tr[data-token="${tokenId}"]`);
    await expect.poll(() => row.count()).toBe(1);
    await expect.poll(() => row.textContent()).toContain('weather');
    await shot('paid-services');
    await row.getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => row.textContent()).toContain('revoked');

    const refused = await fetch(`${s.proxy.url}/health`, { headers: { authorization } });
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('CREDENTIAL_REVOKED');
  });

  it("exports the account's history as CSV, every page from the server", async () => {
    await nav('Accounts');
    await page.locator('tr', { hasText: accountId }).first().click();
    await expect.poll(() => page.locator('.detail h3').textContent()).toContain(accountId);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('text=Export history (CSV)'),
    ]);
    expect(download.suggestedFilename()).toBe(`${accountId}-history.csv`);
    const csv = readFileSync((await download.path())!, 'utf8');
    const lines = csv.trim().split('\r\n');
    expect(lines[0]).toBe('seq,at,type,transferId,amountMsat,accounts,detail');
    const history = await api('GET', `/v1/accounts/${accountId}/history?limit=500`);
    const entries = history.body['entries'] as { seq: number; type: string; amount?: string }[];
    expect(lines).toHaveLength(entries.length + 1);
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 1)[0])).toEqual(entries.map((e) => String(e.seq)));
    expect(csv).toContain(',50000000,');
    expect(csv).toContain(',20000,');
  });

  it("shows the account's payments (status, fee, hash) and escrows, the operator's escrows, and revokes a device", async () => {
    // The account's page is open (the CSV export above): its activity starts on its payments.
    const listed = await api('GET', `/v1/accounts/${accountId}/payments?limit=20`);
    const p = (listed.body['payments'] as { id: string; status: string; paymentHash: string }[])[0]!;
    const row = page.locator(`.activity .payments tr[data-row="${p.id}"]`);
    await expect.poll(() => row.textContent()).toContain(p.status);
    expect(await row.locator('[title]').getAttribute('title')).toBe(p.paymentHash);
    await shot('account-activity');

    const payee = await api('POST', '/v1/accounts', { kind: 'agent', name: 'console e2e payee', tier: 'L1' });
    const escrow = await api('POST', `/v1/accounts/${accountId}/escrows`, {
      payeeAccountId: payee.body['id'],
      amountMsat: '500',
      condition: { type: 'approval' },
      funding: 'account',
    });
    expect(escrow.status).toBe(201);
    const escrowId = escrow.body['id'] as string;
    await page.getByRole('tab', { name: 'escrows' }).click();
    await expect.poll(() => page.locator(`.activity .escrows tr[data-row="${escrowId}"]`).count()).toBe(1);
    await nav('Escrows');
    const everyEscrow = page.locator(`.escrows tr[data-row="${escrowId}"]`);
    await expect.poll(() => everyEscrow.textContent()).toContain(escrow.body['state'] as string);
    await shot('escrows');

    // The generator's x coordinate: a valid BIP340 device key.
    const deviceId = '79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798';
    const device = await api('POST', '/v1/devices', {
      deviceId,
      accountId: payee.body['id'],
      name: 'e2e lamp',
    });
    expect(device.status).toBe(201);
    await nav('Devices');
    const d = page.locator(`.devices tr[data-row="${deviceId}"]`);
    await expect.poll(() => d.textContent()).toContain('active');
    // Never connected: offline, and no last-seen time yet.
    expect(await d.textContent()).toContain('offline');
    await shot('devices');
    await d.getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => d.textContent()).toContain('revoked');
    const devices = (await api('GET', '/v1/devices')).body['devices'] as {
      deviceId: string;
      state: string;
    }[];
    expect(devices.find((x) => x.deviceId === deviceId)?.state).toBe('revoked');
  });
});
