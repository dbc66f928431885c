import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { client, print } from './api-client.js';

const enc = encodeURIComponent;

/** Accounts, keys, policies, invoices, payments, transfers and approvals over the HTTP API. */
export function registerAccountCommands(program: Command): void {
  program
    .option('--url <url>', 'gateway URL (default $COULOMB_URL or http://127.0.0.1:8402)')
    .option(
      '--key <key>',
      'operator key or account API key (default $COULOMB_API_KEY or $COULOMB_OPERATOR_KEY)',
    );

  const account = program.command('account').description('custodial accounts');
  account
    .command('create <name>')
    .option('--kind <kind>', 'agent | device | service', 'agent')
    .option('--tier <tier>', 'L0 (view-only, default) | L1 | L2 | L3')
    .option('--id <id>', 'choose the account id')
    .action(async (name: string, o: { kind: string; tier?: string; id?: string }, cmd: Command) =>
      print(
        await client(cmd).call('POST', '/v1/accounts', {
          name,
          kind: o.kind,
          ...(o.tier ? { tier: o.tier } : {}),
          ...(o.id ? { id: o.id } : {}),
        }),
      ),
    );
  account
    .command('list')
    .action(async (_o: unknown, cmd: Command) => print(await client(cmd).call('GET', '/v1/accounts')));
  account
    .command('show <id>')
    .description('balance and state')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(id)}`)),
    );
  account
    .command('fund <id> <amountMsat>')
    .description("credit the account from the operator's funds")
    .option('--idempotency-key <key>')
    .action(async (id: string, amountMsat: string, o: { idempotencyKey?: string }, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(id)}/fund`, {
          amountMsat,
          ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
        }),
      ),
    );
  account
    .command('history <id>')
    .option('--limit <n>', 'entries', '50')
    .action(async (id: string, o: { limit: string }, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(id)}/history?limit=${enc(o.limit)}`)),
    );
  for (const verb of ['freeze', 'unfreeze'] as const) {
    account
      .command(`${verb} <id>`)
      .action(async (id: string, _o: unknown, cmd: Command) =>
        print(await client(cmd).call('POST', `/v1/accounts/${enc(id)}/${verb}`, {})),
      );
  }

  program
    .command('policy <id>')
    .description('show, or set with --tier or --rules')
    .option('--tier <tier>', 'L0 | L1 | L2 | L3')
    .option('--rules <file>', 'JSON file with an array of rules')
    .action(async (id: string, o: { tier?: string; rules?: string }, cmd: Command) => {
      const c = client(cmd);
      if (o.tier) return print(await c.call('PUT', `/v1/accounts/${enc(id)}/policy`, { tier: o.tier }));
      if (o.rules)
        return print(
          await c.call('PUT', `/v1/accounts/${enc(id)}/policy`, {
            rules: JSON.parse(readFileSync(o.rules, 'utf8')) as unknown,
          }),
        );
      print(await c.call('GET', `/v1/accounts/${enc(id)}/policy`));
    });

  program
    .command('key <id>')
    .description('create an API key for an account (shown once)')
    .requiredOption('--scopes <list>', 'comma-separated: admin,pay,invoice,read')
    .option('--expires-in <seconds>')
    .action(async (id: string, o: { scopes: string; expiresIn?: string }, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(id)}/keys`, {
          scopes: o.scopes.split(','),
          ...(o.expiresIn ? { expiresInSeconds: Number(o.expiresIn) } : {}),
        }),
      ),
    );

  program
    .command('invoice <id> <amountMsat>')
    .description('create an invoice paying into the account')
    .option('--description <text>')
    .option('--idempotency-key <key>')
    .action(
      async (
        id: string,
        amountMsat: string,
        o: { description?: string; idempotencyKey?: string },
        cmd: Command,
      ) =>
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(id)}/invoices`, {
            amountMsat,
            ...(o.description ? { description: o.description } : {}),
            ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
          }),
        ),
    );

  program
    .command('pay <id> <bolt11>')
    .description('pay an invoice from the account')
    .option('--max-fee <msat>')
    .option('--amount <msat>', 'for invoices without an amount')
    .option('--idempotency-key <key>')
    .action(
      async (
        id: string,
        request: string,
        o: { maxFee?: string; amount?: string; idempotencyKey?: string },
        cmd: Command,
      ) =>
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(id)}/payments`, {
            request,
            ...(o.maxFee ? { maxFeeMsat: o.maxFee } : {}),
            ...(o.amount ? { amountMsat: o.amount } : {}),
            ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
          }),
        ),
    );
  program
    .command('payments <id>')
    .description("the account's payments, newest first (a page; --cursor takes the page's nextCursor)")
    .option('--limit <n>', 'payments per page (at most 500)', '100')
    .option('--cursor <cursor>', 'continue after the page that gave this nextCursor')
    .action(async (id: string, o: { limit: string; cursor?: string }, cmd: Command) =>
      print(
        await client(cmd).call(
          'GET',
          `/v1/accounts/${enc(id)}/payments?limit=${enc(o.limit)}${o.cursor ? `&cursor=${enc(o.cursor)}` : ''}`,
        ),
      ),
    );

  program
    .command('transfer <from> <to> <amountMsat>')
    .description('move funds between two accounts of this gateway')
    .option('--memo <text>')
    .action(async (from: string, to: string, amountMsat: string, o: { memo?: string }, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(from)}/transfers`, {
          toAccountId: to,
          amountMsat,
          ...(o.memo ? { memo: o.memo } : {}),
        }),
      ),
    );

  const approvals = program.command('approvals').description('payments waiting for the operator');
  approvals
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      print(await client(cmd).call('GET', '/v1/approvals?state=pending')),
    );
  for (const verb of ['approve', 'deny'] as const) {
    approvals
      .command(`${verb} <approvalId>`)
      .action(async (id: string, _o: unknown, cmd: Command) =>
        print(await client(cmd).call('POST', `/v1/approvals/${enc(id)}/${verb}`)),
      );
  }

  program
    .command('liabilities')
    .description('what accounts are owed against node funds')
    .action(async (_o: unknown, cmd: Command) => print(await client(cmd).call('GET', '/v1/liabilities')));
}
