import type { Command } from 'commander';
import { client, print, type ApiClient } from './api-client.js';

interface Health {
  status: string;
  lightning: string;
}
interface NodeInfo {
  alias: string;
  pubkey: string;
  network: string;
  blockHeight: number;
  syncedToChain: boolean;
  activeChannels: number;
  peers: number;
}
interface Liabilities {
  accountsMsat: string;
  nodeChannelLocalMsat: string;
  nodeOnchainMsat: string;
  coverage: string;
}
interface ProxyServices {
  services: { name: string; pathPrefix: string; mode: string; origin: string }[];
}

/** A call whose failure is part of the answer (a feature that is off, a key that is missing). */
async function maybe<T>(api: ApiClient, path: string): Promise<T | { error: string }> {
  try {
    return (await api.call('GET', path)) as T;
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const sat = (msat: string): string => `${(BigInt(msat) / 1000n).toLocaleString('en-US')} sat`;

/** `coulomb status`: what runs where, from the running gateway's API (LND is not loaded here). */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('what the running gateway serves: Lightning node, funds coverage, paid services')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      const health = await healthOf(api);
      const [node, liabilities, proxy] = await Promise.all([
        maybe<NodeInfo>(api, '/v1/node'),
        maybe<Liabilities>(api, '/v1/liabilities'),
        maybe<ProxyServices>(api, '/v1/proxy/services'),
      ]);
      const status = { health, node, liabilities, proxy };
      if (o.json) return print(status);
      const lines = [`gateway   ${health.status} (Lightning ${health.lightning})`];
      if ('error' in node) lines.push(`node      ${node.error}`);
      else
        lines.push(
          `node      ${node.alias || node.pubkey.slice(0, 16)} on ${node.network}, block ${node.blockHeight}` +
            `${node.syncedToChain ? '' : ' (syncing)'}, ${node.activeChannels} channels, ${node.peers} peers`,
        );
      if (!('error' in liabilities))
        lines.push(
          `funds     owed ${sat(liabilities.accountsMsat)}; channels ${sat(liabilities.nodeChannelLocalMsat)}, ` +
            `on-chain ${sat(liabilities.nodeOnchainMsat)}; coverage ${liabilities.coverage}` +
            (liabilities.coverage !== 'inf' && Number(liabilities.coverage) < 1 ? '  ALERT: below 1' : ''),
        );
      if ('error' in proxy) lines.push(`proxy     off or unreachable (${proxy.error})`);
      else
        for (const s of proxy.services)
          lines.push(`service   ${s.name} ${s.mode} ${s.pathPrefix} (${s.origin})`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}

async function healthOf(api: ApiClient): Promise<Health> {
  try {
    return (await api.call('GET', '/health')) as Health;
  } catch (err) {
    // 503 is an answer too: the gateway runs, LND does not answer.
    if (/^503 /.test((err as Error).message)) return { status: 'degraded', lightning: 'disconnected' };
    throw err;
  }
}
