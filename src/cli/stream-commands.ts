import type { Command } from 'commander';
import { client, print } from './api-client.js';

const enc = encodeURIComponent;

/** Streaming payment commands over the HTTP API. */
export function registerStreamCommands(program: Command): void {
  const stream = program.command('stream').description('per-second and metered streaming payments');
  stream
    .command('start <payerAccount>')
    .description('start a stream to an account of this gateway or to another node')
    .option('--to-account <account>', 'payee account on this gateway')
    .option('--to-node <pubkey>', 'payee node (keysend)')
    .option('--recipient <id>', 'the recipient id the payee node gave (its stream inbox)')
    .option('--rate <msat>', 'msat per --per seconds')
    .option('--per <seconds>', 'the rate is per this many seconds', '1')
    .option('--price-per-unit <msat>', 'metered stream: price of one reported unit')
    .option('--max-total <msat>')
    .option('--max-duration <seconds>')
    .option('--interval <seconds>', 'seconds between keysends to another node', '1')
    .action(
      async (
        payer: string,
        o: {
          toAccount?: string;
          toNode?: string;
          recipient?: string;
          rate?: string;
          per: string;
          pricePerUnit?: string;
          maxTotal?: string;
          maxDuration?: string;
          interval: string;
        },
        cmd: Command,
      ) => {
        const payee = o.toAccount
          ? { accountId: o.toAccount }
          : { nodePubkey: o.toNode, ...(o.recipient ? { recipientId: o.recipient } : {}) };
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(payer)}/streams`, {
            payee,
            ...(o.rate ? { rateMsat: o.rate, perSeconds: Number(o.per) } : {}),
            ...(o.pricePerUnit ? { priceMsatPerUnit: o.pricePerUnit } : {}),
            ...(o.maxTotal ? { maxTotalMsat: o.maxTotal } : {}),
            ...(o.maxDuration ? { maxDurationSeconds: Number(o.maxDuration) } : {}),
            ...(o.toNode ? { intervalSeconds: Number(o.interval) } : {}),
          }),
        );
      },
    );
  stream
    .command('list <account>')
    .description("the account's streams, newest first (a page; --before takes the page's next)")
    .option('--limit <n>', 'streams per page (at most 1000)', '100')
    .option('--before <cursor>', 'continue after the page that gave this next')
    .action(async (account: string, o: Page, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/streams${pageQuery(o)}`)),
    );
  for (const verb of ['pause', 'resume', 'stop'] as const)
    stream
      .command(`${verb} <account> <streamId>`)
      .action(async (account: string, id: string, _o: unknown, cmd: Command) =>
        print(await client(cmd).call('POST', `/v1/accounts/${enc(account)}/streams/${enc(id)}/${verb}`)),
      );
  stream
    .command('usage <payeeAccount> <streamId> <units>')
    .description('the meter reports consumed units of a metered stream')
    .action(async (account: string, id: string, units: string, _o: unknown, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(account)}/streams/${enc(id)}/usage`, {
          units: Number(units),
        }),
      ),
    );
  stream
    .command('inbox <account>')
    .description('a recipient id for streams from other nodes')
    .option('--grace <seconds>', 'report a lapse after this long without payment', '5')
    .action(async (account: string, o: { grace: string }, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(account)}/stream-inboxes`, {
          graceSeconds: Number(o.grace),
        }),
      ),
    );
  stream
    .command('incoming <account>')
    .description("the account's inboxes and incoming streams, newest first (a page; --before takes next)")
    .option('--limit <n>', 'incoming streams per page (at most 1000)', '100')
    .option('--before <cursor>', 'continue after the page that gave this next')
    .action(async (account: string, o: Page, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/incoming-streams${pageQuery(o)}`)),
    );
}

interface Page {
  limit: string;
  before?: string;
}

const pageQuery = (o: Page): string =>
  `?limit=${encodeURIComponent(o.limit)}${o.before ? `&before=${encodeURIComponent(o.before)}` : ''}`;
