import type { Command } from 'commander';
import { client, print } from './api-client.js';

const enc = encodeURIComponent;

interface Page {
  limit: string;
  before?: string;
}

const pageQuery = (o: Page): string => `?limit=${enc(o.limit)}${o.before ? `&before=${enc(o.before)}` : ''}`;

/** The delivery window: --start (ISO time or ms) and --slots (whole slots of --slot seconds). */
function window(o: { start: string; slots: string; slot: string }): {
  windowStart: number;
  windowEnd: number;
} {
  const start = /^[0-9]+$/.test(o.start) ? Number(o.start) : Date.parse(o.start);
  if (!Number.isSafeInteger(start)) throw new Error('--start must be an ISO time or ms since the epoch');
  return { windowStart: start, windowEnd: start + Number(o.slots) * Number(o.slot) * 1000 };
}

/** Energy market commands over the HTTP API: orders, the book, trades, meter readings. */
export function registerEnergyCommands(program: Command): void {
  const energy = program.command('energy').description('the energy market: offers, bids, order book, trades');
  for (const side of ['offer', 'bid'] as const)
    energy
      .command(`${side} <account> <quantityWh> <priceMsatPerKWh>`)
      .description(side === 'offer' ? 'sell energy in a delivery window' : 'buy energy in a delivery window')
      .requiredOption('--start <time>', 'the delivery window start (ISO time or ms; a multiple of the slot)')
      .option('--slots <n>', 'the window length in slots', '1')
      .option('--slot <seconds>', 'the market slot (the gateway config energy.slotSeconds)', '900')
      .option('--zone <zone>', 'grid zone', 'default')
      .option('--meter <deviceId>', "bids: the consumer's meter that verifies delivery")
      .action(
        async (
          account: string,
          quantityWh: string,
          price: string,
          o: { start: string; slots: string; slot: string; zone: string; meter?: string },
          cmd: Command,
        ) =>
          print(
            await client(cmd).call('POST', `/v1/accounts/${enc(account)}/energy/orders`, {
              side,
              zone: o.zone,
              ...window(o),
              quantityWh,
              priceMsatPerKWh: price,
              ...(o.meter ? { meterDeviceId: o.meter } : {}),
            }),
          ),
      );
  energy
    .command('cancel <account> <orderId>')
    .action(async (account: string, id: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('POST', `/v1/accounts/${enc(account)}/energy/orders/${enc(id)}/cancel`)),
    );
  energy
    .command('orders <account>')
    .description("the account's orders, newest first (a page)")
    .option('--limit <n>', 'per page (at most 500)', '100')
    .option('--before <cursor>')
    .action(async (account: string, o: Page, cmd: Command) =>
      print(await client(cmd).call('GET', `/v1/accounts/${enc(account)}/energy/orders${pageQuery(o)}`)),
    );
  energy
    .command('book')
    .description('the order book and last price of a product (public)')
    .requiredOption('--start <time>', 'the delivery window start (ISO time or ms)')
    .option('--slots <n>', 'the window length in slots', '1')
    .option('--slot <seconds>', 'the market slot', '900')
    .option('--zone <zone>', 'grid zone', 'default')
    .option('--depth <n>', 'levels per side', '20')
    .action(
      async (
        o: { start: string; slots: string; slot: string; zone: string; depth: string },
        cmd: Command,
      ) => {
        const w = window(o);
        print(
          await client(cmd).call(
            'GET',
            `/v1/energy/book?zone=${enc(o.zone)}&windowStart=${w.windowStart}&windowEnd=${w.windowEnd}&depth=${enc(o.depth)}`,
          ),
        );
      },
    );
  energy
    .command('trades [account]')
    .description("an account's trades, or the public tape without an account (newest first, a page)")
    .option('--limit <n>', 'per page (at most 500)', '100')
    .option('--before <cursor>')
    .action(async (account: string | undefined, o: Page, cmd: Command) =>
      print(
        await client(cmd).call(
          'GET',
          account
            ? `/v1/accounts/${enc(account)}/energy/trades${pageQuery(o)}`
            : `/v1/energy/trades${pageQuery(o)}`,
        ),
      ),
    );
  energy
    .command('reading <account> <tradeId> <interval> <wh>')
    .description("a meter reading of one interval of a trade (the producer's, or the consumer's meter)")
    .action(async (account: string, id: string, interval: string, wh: string, _o: unknown, cmd: Command) =>
      print(
        await client(cmd).call('POST', `/v1/accounts/${enc(account)}/energy/trades/${enc(id)}/readings`, {
          interval: Number(interval),
          wh,
        }),
      ),
    );
  energy
    .command('stop <account> <tradeId>')
    .description('stop a delivering trade (what was billed is paid)')
    .action(async (account: string, id: string, _o: unknown, cmd: Command) =>
      print(await client(cmd).call('POST', `/v1/accounts/${enc(account)}/energy/trades/${enc(id)}/stop`)),
    );
}
