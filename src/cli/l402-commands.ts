import type { Command } from 'commander';
import { client, print } from './api-client.js';
import type { NodeName } from '../regtest/layout.js';

/**
 * `coulomb l402 fetch URL`: a paid request, paying from a node of the local regtest network.
 * `coulomb l402 revoke` / `revoked`: the operator's credential revocations over the HTTP API.
 */
export function registerL402Commands(program: Command): void {
  const l402 = program.command('l402').description('L402 client tools and credential revocation');
  l402
    .command('revoke <credential>')
    .description(
      'revoke a credential (operator): its token id (64 hex), "L402 <macaroon>:<preimage>" or the macaroon',
    )
    .option('--reason <text>', 'kept with the revocation')
    .action(async (credential: string, o: { reason?: string }, cmd: Command) => {
      const target = /^[0-9a-fA-F]{64}$/.test(credential)
        ? { tokenId: credential.toLowerCase() }
        : { credential };
      print(
        await client(cmd).call('POST', '/v1/l402/credentials/revoke', {
          ...target,
          ...(o.reason ? { reason: o.reason } : {}),
        }),
      );
    });
  l402
    .command('revoked')
    .description('list revoked credentials (operator), in token id order')
    .option('--limit <n>', 'entries', '100')
    .option('--after <tokenId>', "continue after this token id (the previous page's next)")
    .action(async (o: { limit: string; after?: string }, cmd: Command) => {
      const q = new URLSearchParams({ limit: o.limit, ...(o.after ? { after: o.after } : {}) });
      print(await client(cmd).call('GET', `/v1/l402/credentials/revoked?${q.toString()}`));
    });
  l402
    .command('fetch <url>')
    .description('request a paid URL, paying its 402 challenge from a regtest node')
    .option('--payer <node>', 'regtest node that pays: alice | bob | carol', 'bob')
    .option('--data <json>', 'POST this JSON body')
    .option('--max-cost <msat>', 'refuse challenges dearer than this', '10000000')
    .option('--regtest-dir <dir>', 'the regtest network directory')
    .action(
      async (url: string, o: { payer: string; data?: string; maxCost: string; regtestDir?: string }) => {
        // Loaded here only: the other commands never load LND's client.
        const [{ RegtestNetwork }, { LndBackend }, { createL402Fetch, lndPayer }] = await Promise.all([
          import('../regtest/network.js'),
          import('../lightning/lnd/lnd-backend.js'),
          import('../l402/client.js'),
        ]);
        const network = new RegtestNetwork(o.regtestDir ? { dataDir: o.regtestDir } : {});
        const node = (await network.status()).nodes.find((n) => n.name === (o.payer as NodeName));
        if (!node?.running)
          throw new Error(`regtest node ${o.payer} is not running (npm start or coulomb regtest up)`);
        const backend = await LndBackend.connect({
          socket: node.grpcSocket,
          cert: node.tlsCert,
          macaroon: node.adminMacaroon,
        });
        try {
          const paid: string[] = [];
          const f = createL402Fetch({
            payer: lndPayer(backend),
            maxCostMsat: BigInt(o.maxCost),
            onPayment: (p) => paid.push(`${p.amountMsat} msat`),
          });
          const res = await f(
            url,
            o.data ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: o.data } : {},
          );
          if (paid.length) process.stderr.write(`paid ${paid.join(', ')} from ${o.payer}\n`);
          const text = await res.text();
          // A stream tells the credit after its final charge in a comment; the header of a metered
          // request tells it after the worst-case reservation (docs/L402.md, "The credit figure").
          const final = /^: coulomb-credit-remaining-msat=(\d+)$/m.exec(text)?.[1];
          const header = res.headers.get('x-l402-credit-remaining-msat');
          const reserved = res.headers.get('trailer') ? " (after this request's reservation)" : '';
          process.stderr.write(
            `HTTP ${res.status}${final ? `, credit left ${final} msat` : header ? `, credit left ${header} msat${reserved}` : ''}\n`,
          );
          process.stdout.write(text + '\n');
        } finally {
          await backend.close();
        }
        process.exit(0);
      },
    );
}
