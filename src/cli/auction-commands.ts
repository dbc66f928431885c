import type { Command } from 'commander';
import { client, print } from './api-client.js';

const enc = encodeURIComponent;

/** Reverse auctions of tasks over the HTTP API. */
export function registerAuctionCommands(program: Command): void {
  const auction = program.command('auction').description('reverse auctions: providers bid for a task');
  auction
    .command('open <account> <title> <maxRewardMsat>')
    .description('open a task for bids (the winner gets the task, its bid escrowed as the reward)')
    .option('--capability <cap...>', 'capabilities a bidder must advertise')
    .option('--bid-seconds <s>', 'bids are taken this long', '300')
    .option('--max-promised <s>', 'the longest time a bidder may promise', '3600')
    .option('--manual', 'the buyer picks (otherwise the best score wins at the deadline)')
    .option('--description <text>')
    .action(
      async (
        account: string,
        title: string,
        maxRewardMsat: string,
        o: {
          capability?: string[];
          bidSeconds: string;
          maxPromised: string;
          manual?: boolean;
          description?: string;
        },
        cmd: Command,
      ) =>
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(account)}/auctions`, {
            title,
            maxRewardMsat,
            bidSeconds: Number(o.bidSeconds),
            maxPromisedSeconds: Number(o.maxPromised),
            ...(o.capability ? { capabilities: o.capability } : {}),
            ...(o.manual ? { selection: 'manual' } : {}),
            ...(o.description ? { description: o.description } : {}),
          }),
        ),
    );
  auction
    .command('list <account>')
    .description("open auctions (--open, optionally --capability), or the account's own, newest first")
    .option('--open', 'the open auctions')
    .option('--capability <caps>', 'comma-separated: those these capabilities can bid on')
    .action(async (account: string, o: { open?: boolean; capability?: string }, cmd: Command) =>
      print(
        await client(cmd).call(
          'GET',
          `/v1/accounts/${enc(account)}/auctions${o.open ? `?open=true${o.capability ? `&capability=${enc(o.capability)}` : ''}` : ''}`,
        ),
      ),
    );
  auction
    .command('show <account> <auctionId>')
    .description('the auction and its bids ranked by score')
    .action(async (account: string, id: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/auctions/${enc(id)}`)),
    );
  auction
    .command('bid <account> <auctionId> <priceMsat> <promisedSeconds>')
    .action(
      async (account: string, id: string, priceMsat: string, promised: string, _o: unknown, cmd: Command) =>
        print(
          await client(cmd).call('POST', `/v1/accounts/${enc(account)}/auctions/${enc(id)}/bids`, {
            priceMsat,
            promisedSeconds: Number(promised),
          }),
        ),
    );
  auction
    .command('award <account> <auctionId> [bidder]')
    .description('award to the bidder named, or to the best score')
    .action(async (account: string, id: string, bidder: string | undefined, _o: unknown, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(account)}/auctions/${enc(id)}/award`, {
          ...(bidder ? { bidderAccountId: bidder } : {}),
        }),
      ),
    );
}
