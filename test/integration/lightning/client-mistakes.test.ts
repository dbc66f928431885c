import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHodlInvoice, createInvoice } from 'ln-service';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../src/config/load.js';
import { buildApp, type CoulombApp } from '../../../src/http/app.js';
import { OperatorAuth } from '../../../src/http/operator-auth.js';
import type { AccountServices } from '../../../src/http/routes/accounts.js';
import { MAX_INVOICE_MSAT } from '../../../src/lightning/limits.js';
import type { LndBackend } from '../../../src/lightning/lnd/lnd-backend.js';
import { toLightningError } from '../../../src/lightning/lnd/map-error.js';
import { openAccounts } from '../../../src/main.js';
import { tierPolicy } from '../../../src/policy/tiers.js';
import { backendFor, rawLnd } from '../../support/regtest.js';

const OPERATOR_KEY = 'm'.repeat(40);
let backend: LndBackend;
let stack: { services: AccountServices; close(): Promise<void> };
let app: CoulombApp;

beforeAll(async () => {
  backend = await backendFor('alice');
  const config = { ...DEFAULTS, dataDir: mkdtempSync(join(tmpdir(), 'coulomb-mistakes-')) };
  stack = await openAccounts(config, backend, pino({ level: 'silent' }));
  app = await buildApp({
    backend,
    operatorAuth: OperatorAuth.fromKey(OPERATOR_KEY),
    accounts: stack.services,
  });
  for (const id of ['mx-payer', 'mx-payee']) {
    await stack.services.ledger.createAccount({ id, kind: 'agent', name: id }).durable;
    await stack.services.policies.set(id, tierPolicy('L2'));
  }
});
afterAll(async () => {
  await app?.close();
  await stack?.close();
  await backend?.close();
});

const post = (url: string, payload: object) =>
  app.inject({ method: 'POST', url, payload, headers: { authorization: `Bearer ${OPERATOR_KEY}` } });

describe('client mistakes LND refuses are 4xx with our own code and words (regtest)', () => {
  it('maps LND 0.19’s own texts for a duplicate hash and an oversized invoice', async () => {
    const lnd = await rawLnd('alice');
    const id = createHash('sha256').update(randomBytes(32)).digest('hex');
    await createHodlInvoice({ lnd, id, mtokens: '1000' });
    const duplicate = await createHodlInvoice({ lnd, id, mtokens: '1000' }).catch((err: unknown) =>
      toLightningError(err, 'createHoldInvoice'),
    );
    expect(duplicate).toMatchObject({ code: 'LN_INVOICE_EXISTS', status: 409 });
    const tooLarge = await createInvoice({ lnd, mtokens: (MAX_INVOICE_MSAT + 1000n).toString() }).catch(
      (err: unknown) => toLightningError(err, 'createInvoice'),
    );
    expect(tooLarge).toMatchObject({ code: 'LN_INVOICE_AMOUNT_TOO_LARGE', status: 400 });
  });

  it('a second preimage escrow on the same payment hash is a 409, not a 502 with LND’s text', async () => {
    const paymentHash = createHash('sha256').update(randomBytes(32)).digest('hex');
    const body = {
      payeeAccountId: 'mx-payee',
      amountMsat: '10000',
      condition: { type: 'preimage', paymentHash },
      timeoutSeconds: 600,
    };
    expect((await post('/v1/accounts/mx-payer/escrows', body)).statusCode).toBe(201);
    const again = await post('/v1/accounts/mx-payer/escrows', body);
    expect(again.statusCode).toBe(409);
    const { error } = again.json<{ error: { code: string; message: string } }>();
    expect(error.code).toBe('LN_INVOICE_EXISTS');
    expect(error.message).not.toContain('invoice with payment hash already exists');
    expect(error.message).not.toContain('UnexpectedAddHodlInvoiceError');
  });

  it('an invoice above LND’s maximum is a 400 before LND is asked', async () => {
    for (const amountMsat of [(MAX_INVOICE_MSAT + 1n).toString(), '2100000000000000000']) {
      const res = await post('/v1/accounts/mx-payee/invoices', { amountMsat });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('LN_INVOICE_AMOUNT_TOO_LARGE');
    }
    expect(
      (await post('/v1/accounts/mx-payee/invoices', { amountMsat: MAX_INVOICE_MSAT.toString() })).statusCode,
    ).toBe(201);
  });

  it('a description within the schema’s characters but over BOLT11’s 639 bytes is a 400', async () => {
    const res = await post('/v1/accounts/mx-payee/invoices', {
      amountMsat: '1000',
      description: '€'.repeat(300),
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('LN_INVALID_ARGUMENT');
    const lnd = await rawLnd('alice');
    const memo = await createInvoice({ lnd, mtokens: '1000', description: '€'.repeat(400) }).catch(
      (err: unknown) => toLightningError(err, 'createInvoice'),
    );
    expect(memo).toMatchObject({ code: 'LN_INVALID_ARGUMENT', status: 400 });
  });
});
