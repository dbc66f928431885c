import type { Command } from 'commander';
import { CliError } from './api-client.js';
import type { McpOptions } from '../mcp/server.js';

const AMOUNT = /^(0|[1-9][0-9]{0,15})$/;

/**
 * `coulomb mcp`: the MCP server for an agent, bound to one account by its API key (stdio by
 * default; `--http` for Streamable HTTP). See docs/MCP.md.
 */
export function registerMcpCommand(program: Command): void {
  program
    .command('mcp')
    .description('serve the MCP tools of one account to an agent (stdio, or --http)')
    .option('--account <id>', 'the account (or COULOMB_ACCOUNT_ID)')
    .option('--max-cost <msat>', 'paid fetch: the most one request may cost', '100000')
    .option('--session-budget <msat>', 'paid fetch: the most this server spends in all', '1000000')
    .option('--max-fee <msat>', 'routing fee limit of each payment', '10000')
    .option(
      '--fetch-allow <host|cidr...>',
      'paid fetch: non-public hosts or blocks allowed (e.g. 127.0.0.1/32)',
    )
    .option('--http', 'serve Streamable HTTP at /mcp instead of stdio')
    .option('--host <host>', 'HTTP: listen address', '127.0.0.1')
    .option('--port <port>', 'HTTP: port', '8405')
    .option('--allowed-origin <origin...>', 'HTTP: browser Origins allowed')
    .action(
      async (
        o: {
          account?: string;
          maxCost: string;
          sessionBudget: string;
          maxFee: string;
          fetchAllow?: string[];
          http?: boolean;
          host: string;
          port: string;
          allowedOrigin?: string[];
        },
        cmd: Command,
      ) => {
        // --url and --key are the program's global options (src/cli/account-commands.ts).
        const g = cmd.optsWithGlobals<{ url?: string; key?: string }>();
        const accountId = o.account ?? process.env['COULOMB_ACCOUNT_ID'];
        const apiKey = g.key ?? process.env['COULOMB_API_KEY'];
        if (!accountId || !apiKey)
          throw new CliError(
            'give the account (--account or COULOMB_ACCOUNT_ID) and its API key (COULOMB_API_KEY)',
          );
        for (const [name, v] of [
          ['--max-cost', o.maxCost],
          ['--session-budget', o.sessionBudget],
          ['--max-fee', o.maxFee],
        ] as const)
          if (!AMOUNT.test(v)) throw new CliError(`${name} is msat as a decimal integer`);
        const options: McpOptions = {
          gatewayUrl: g.url ?? process.env['COULOMB_URL'] ?? 'http://127.0.0.1:8402',
          accountId,
          apiKey,
          maxCostPerRequestMsat: BigInt(o.maxCost),
          maxCostPerSessionMsat: BigInt(o.sessionBudget),
          maxFeeMsat: BigInt(o.maxFee),
          fetchAllow:
            o.fetchAllow ?? (process.env['COULOMB_MCP_FETCH_ALLOW'] ?? '').split(',').filter(Boolean),
        };
        // Loaded only here: the other commands do not pay for the MCP SDK's start-up.
        const { serveHttp, serveStdio } = await import('../mcp/server.js');
        if (!o.http) return serveStdio(options);
        const token = process.env['COULOMB_MCP_TOKEN'];
        if (!token) throw new CliError('--http needs COULOMB_MCP_TOKEN, the bearer secret clients present');
        const served = await serveHttp(options, {
          host: o.host,
          port: Number(o.port),
          token,
          ...(o.allowedOrigin ? { allowedOrigins: o.allowedOrigin } : {}),
        });
        process.stderr.write(`coulomb mcp: listening on ${served.url}\n`);
      },
    );
}
