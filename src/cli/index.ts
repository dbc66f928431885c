#!/usr/bin/env node
import { Command, Option } from 'commander';
import { envOverrides, loadConfig, type Overrides } from '../config/load.js';
import { AppError } from '../domain/errors.js';
import { createLogger } from '../logger.js';
import type { RegtestNetwork } from '../regtest/network.js';
import { printStartBanner } from './banner.js';
import { registerAccountCommands } from './account-commands.js';
import { registerL402Commands } from './l402-commands.js';
import { registerMarketCommands } from './market-commands.js';
import { registerStreamCommands } from './stream-commands.js';
import { registerEnergyCommands } from './energy-commands.js';
import { registerAuctionCommands } from './auction-commands.js';
import { registerMcpCommand } from './mcp-command.js';
import { registerStatusCommand } from './status-command.js';
import { registerStoreCommands } from './store-commands.js';
import { CliError } from './api-client.js';

const program = new Command('coulomb')
  .description('Lightning payment gateway for software and machines')
  .showHelpAfterError();

program
  .command('start')
  .description('start the gateway; with no LND configured, on a local regtest network it brings up itself')
  .option('-c, --config <file>', 'config file (YAML or JSON)')
  .option('--host <host>', 'HTTP listen address')
  .option('-p, --port <port>', 'HTTP port')
  .option('--data-dir <dir>', "the gateway's storage directory")
  .option('--lnd-socket <host:port>', 'LND gRPC address')
  .option('--lnd-cert <file>', 'LND TLS certificate')
  .option('--lnd-macaroon <file>', 'LND macaroon')
  .option('--polar-network <name|id>', 'connect to a node of this Polar network')
  .option('--polar-node <name>', 'the Polar LND node to use')
  .option('--polar-dir <dir>', "Polar's data root")
  .addOption(
    new Option('--log-level <level>').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  )
  .action(async (opts: Record<string, string | undefined>) => {
    const flags: Overrides = {
      'http.host': opts['host'],
      'http.port': opts['port'],
      dataDir: opts['dataDir'],
      'lnd.socket': opts['lndSocket'],
      'lnd.cert': opts['lndCert'],
      'lnd.macaroon': opts['lndMacaroon'],
      'polar.network': opts['polarNetwork'],
      'polar.node': opts['polarNode'],
      'polar.dataDir': opts['polarDir'],
      logLevel: opts['logLevel'],
    };
    const config = loadConfig({
      ...(opts['config'] ? { file: opts['config'] } : {}),
      env: envOverrides(),
      flags,
    });
    const log = createLogger(config.logLevel, { pretty: process.stdout.isTTY === true });
    // The gateway (LND's client, fastify, LevelDB...) is loaded by `start` only: `--help` and the
    // API commands start without it.
    const { startGateway } = await import('../main.js');
    const gateway = await startGateway(config, log);
    printStartBanner(gateway, config);
    const stop = (): void => {
      log.info('shutting down');
      void gateway.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

const regtest = program
  .command('regtest')
  .description('a local regtest network: btcd + lnd alice, bob, carol');
const netOpts = (cmd: Command): Command =>
  cmd
    .option('--data-dir <dir>', 'network data directory (default ./.regtest or $COULOMB_REGTEST_DIR)')
    .option(
      '--base-port <port>',
      'first port the network uses (default 27400 or $COULOMB_REGTEST_BASE_PORT)',
    );
const network = async (opts: { dataDir?: string; basePort?: string }): Promise<RegtestNetwork> =>
  new (await import('../regtest/network.js')).RegtestNetwork(
    {
      ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
      ...(opts.basePort ? { basePort: Number(opts.basePort) } : {}),
    },
    (m) => process.stderr.write(`[regtest] ${m}\n`),
  );

netOpts(
  regtest.command('up').description('start (and on first run create, fund and connect) the network'),
).action(async (opts: { dataDir?: string; basePort?: string }) => {
  const status = await (await network(opts)).up();
  process.stdout.write(JSON.stringify(status, null, 2) + '\n');
  process.exit(0);
});
netOpts(regtest.command('down').description('stop every process of the network (data is kept)')).action(
  async (opts: { dataDir?: string; basePort?: string }) => {
    await (await network(opts)).down();
    process.stderr.write('[regtest] stopped\n');
  },
);
netOpts(
  regtest.command('status').description('show connection info').option('--json', 'print JSON (the default)'),
).action(async (opts: { dataDir?: string; basePort?: string }) => {
  process.stdout.write(JSON.stringify(await (await network(opts)).status(), null, 2) + '\n');
  process.exit(0);
});
netOpts(regtest.command('mine').description('mine blocks').argument('[blocks]', 'how many', '1')).action(
  async (blocks: string, opts: { dataDir?: string; basePort?: string }) => {
    const hashes = await (await network(opts)).mine(Number(blocks));
    process.stdout.write(JSON.stringify({ mined: hashes.length, tip: hashes[hashes.length - 1] }) + '\n');
    process.exit(0);
  },
);

registerAccountCommands(program);
registerL402Commands(program);
registerMarketCommands(program);
registerStreamCommands(program);
registerEnergyCommands(program);
registerAuctionCommands(program);
registerMcpCommand(program);
registerStatusCommand(program);
registerStoreCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CliError) process.stderr.write(`coulomb: ${err.message}\n`);
  else if (err instanceof AppError) process.stderr.write(`coulomb: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`coulomb: ${(err as Error).message ?? String(err)}\n`);
  process.exit(1);
});
