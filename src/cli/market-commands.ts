import type { Command } from 'commander';
import { client, print } from './api-client.js';

const enc = encodeURIComponent;
const opt = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Escrow, task market, registry and reputation commands over the HTTP API. */
export function registerMarketCommands(program: Command): void {
  const escrow = program.command('escrow').description('conditional payments (hold-invoice escrow)');
  escrow
    .command('create <payerAccount> <amountMsat>')
    .description('create an escrow; pay the returned invoice from outside, or use --from-account')
    .option('--payee <account>', 'the payee account')
    .option('--condition <type>', 'approval | receipt | preimage | webhook', 'approval')
    .option('--payment-hash <hex>', 'preimage condition: the payee’s payment hash')
    .option('--webhook <url>', 'webhook condition: the verifier URL')
    .option('--webhook-timeout-ms <ms>', 'webhook condition: answer timeout', '5000')
    .option('--timeout <seconds>', 'seconds until the deadline')
    .option('--cltv <blocks>', 'final CLTV delta of the hold invoice (<= 450)')
    .option('--from-account', 'lock the payer’s balance instead of a hold invoice')
    .option('--description <text>')
    .action(
      async (
        payer: string,
        amountMsat: string,
        o: {
          payee?: string;
          condition: string;
          paymentHash?: string;
          webhook?: string;
          webhookTimeoutMs: string;
          timeout?: string;
          cltv?: string;
          fromAccount?: boolean;
          description?: string;
        },
        cmd: Command,
      ) => {
        const condition =
          o.condition === 'preimage'
            ? { type: 'preimage', paymentHash: o.paymentHash }
            : o.condition === 'webhook'
              ? { type: 'webhook', url: o.webhook, timeoutMs: Number(o.webhookTimeoutMs) }
              : { type: o.condition };
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(payer)}/escrows`, {
            amountMsat,
            condition,
            ...opt({
              payeeAccountId: o.payee,
              description: o.description,
              timeoutSeconds: o.timeout !== undefined ? Number(o.timeout) : undefined,
              cltvDelta: o.cltv !== undefined ? Number(o.cltv) : undefined,
              funding: o.fromAccount ? 'account' : undefined,
            }),
          }),
        );
      },
    );
  escrow
    .command('list <account>')
    .action(async (account: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/escrows`)),
    );
  escrow
    .command('show <account> <escrowId>')
    .action(async (account: string, id: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/escrows/${enc(id)}`)),
    );
  const step = (
    name: string,
    description: string,
    body: (args: string[]) => object,
    extra: string[] = [],
  ): void => {
    escrow
      .command(`${name} <account> <escrowId> ${extra.join(' ')}`.trim())
      .description(description)
      .action(async (account: string, id: string, ...rest: unknown[]) => {
        const cmd = rest[rest.length - 1] as Command;
        const args = rest.slice(0, extra.length) as string[];
        print(
          await client(cmd).call(
            'POST',
            `/v1/accounts/${enc(account)}/escrows/${enc(id)}/${name}`,
            body(args),
          ),
        );
      });
  };
  step('fund', 'fund from the payer account', () => ({}));
  step('approve', 'payer: release to the payee', () => ({}));
  step('cancel', 'payee: give the money back; payer: cancel an unfunded escrow', () => ({}));
  step('preimage', 'payee: reveal the preimage', ([p]) => ({ preimage: p }), ['<preimage>']);
  step(
    'receipt',
    'payee: present a signed delivery receipt',
    ([payload, signature]) => ({ payload, signature }),
    ['<payload>', '<signature>'],
  );
  step(
    'verify',
    'payee: ask the webhook verifier',
    ([evidence]) => ({ evidence: JSON.parse(evidence ?? 'null') as unknown }),
    ['[evidenceJson]'],
  );
  for (const verb of ['release', 'refund'] as const)
    escrow
      .command(`${verb}-now <escrowId>`)
      .description(`operator: ${verb} any escrow`)
      .action(async (id: string, _o: unknown, cmd: Command) =>
        print(await client(cmd).call('POST', `/v1/escrows/${enc(id)}/${verb}`)),
      );

  const task = program.command('task').description('the task market');
  task
    .command('publish <account> <title> <rewardMsat>')
    .option('--capability <cap...>', 'capabilities an agent needs')
    .option('--deadline <seconds>', 'seconds until the result is due', '3600')
    .option('--review <seconds>', 'seconds the publisher has to review')
    .option('--description <text>')
    .action(
      async (
        account: string,
        title: string,
        rewardMsat: string,
        o: { capability?: string[]; deadline: string; review?: string; description?: string },
        cmd: Command,
      ) =>
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(account)}/tasks`, {
            title,
            rewardMsat,
            deadlineSeconds: Number(o.deadline),
            ...opt({
              capabilities: o.capability,
              description: o.description,
              reviewSeconds: o.review !== undefined ? Number(o.review) : undefined,
            }),
          }),
        ),
    );
  task
    .command('list <account>')
    .option('--state <state>')
    .option('--capability <caps>', 'comma-separated')
    .option('--mine')
    .action(
      async (account: string, o: { state?: string; capability?: string; mine?: boolean }, cmd: Command) => {
        const q = new URLSearchParams(
          opt({ state: o.state, capability: o.capability, mine: o.mine ? 'true' : undefined }) as Record<
            string,
            string
          >,
        );
        print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/tasks?${q.toString()}`));
      },
    );
  const taskStep = (name: string, body: (arg?: string) => object, arg?: string): void => {
    task
      .command(`${name} <account> <taskId>${arg ? ` ${arg}` : ''}`)
      .action(async (account: string, id: string, ...rest: unknown[]) => {
        const cmd = rest[rest.length - 1] as Command;
        const value = arg ? (rest[0] as string) : undefined;
        print(
          await client(cmd).call(
            'POST',
            `/v1/accounts/${enc(account)}/tasks/${enc(id)}/${name}`,
            body(value),
          ),
        );
      });
  };
  taskStep('claim', () => ({}));
  taskStep('submit', (result) => ({ result }), '<result>');
  taskStep('accept', () => ({}));
  taskStep('reject', (reason) => ({ reason }), '<reason>');
  task
    .command('resolve <taskId> <winner>')
    .description('operator: decide a dispute for agent or publisher')
    .action(async (id: string, winner: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('POST', `/v1/tasks/${enc(id)}/resolve`, { winner })),
    );

  program
    .command('reputation <account> <ofAccount>')
    .description('completed, disputed, lost and late counts of an account')
    .action(async (account: string, of: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/reputation/${enc(of)}`)),
    );

  const offer = program.command('offer').description('the service registry');
  offer
    .command('add <account> <title> <priceMsat>')
    .requiredOption('--capability <cap...>')
    .option('--unit <unit>', 'request | second | unit | task', 'request')
    .option('--endpoint <url>')
    .option('--description <text>')
    .action(
      async (
        account: string,
        title: string,
        priceMsat: string,
        o: { capability: string[]; unit: string; endpoint?: string; description?: string },
        cmd: Command,
      ) =>
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(account)}/offers`, {
            title,
            priceMsat,
            capabilities: o.capability,
            unit: o.unit,
            ...opt({ endpoint: o.endpoint, description: o.description }),
          }),
        ),
    );
  offer
    .command('find <account>')
    .option('--capability <caps>', 'comma-separated')
    .action(async (account: string, o: { capability?: string }, cmd: Command) =>
      print(
        await client(cmd).call(
          'GET',
          `/v1/accounts/${enc(account)}/registry${o.capability ? `?capability=${enc(o.capability)}` : ''}`,
        ),
      ),
    );
}
