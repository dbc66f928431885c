import type { Config } from '../config/schema.js';
import type { Gateway } from '../main.js';

/** What runs where and how to try it, for a person at a terminal (stdout, not the log). */
export function printStartBanner(gateway: Gateway, config: Config): void {
  const lines: string[] = ['', `Coulomb gateway listening on ${gateway.url}`];
  if (gateway.network) {
    lines.push(
      `  Lightning: local regtest network in ${gateway.network.dataDir} (gateway node: ${config.regtest.node})`,
    );
    for (const n of gateway.network.nodes)
      lines.push(`    ${n.name.padEnd(6)} ${n.pubkey}  grpc ${n.grpcSocket}`);
    lines.push(`    btcd   rpc ${gateway.network.btcd.rpcSocket}`);
    lines.push('  The network keeps running after the gateway stops; stop it with: npm run regtest:down');
  } else {
    lines.push(
      `  Lightning: ${gateway.lndSource === 'polar' ? `Polar node ${config.polar?.node}` : `LND at ${config.lnd?.socket}`}`,
    );
  }
  lines.push(`  Console:   ${gateway.url}/console (log in with the operator key)`);
  lines.push(`  API docs:  ${gateway.url}/docs`);
  lines.push(`  Metrics:   ${gateway.url}/metrics (operator key or scrape token)`);
  if (gateway.proxy) {
    lines.push(
      `  L402 proxy: ${gateway.proxy.url} (services: ${gateway.proxy.services.join(', ')}; discovery ${gateway.proxy.url}/.well-known/l402.json)`,
    );
    lines.push(`    change services live: ${gateway.url}/v1/proxy/services (operator key)`);
    if (gateway.proxy.sampleUpstream)
      lines.push(`    SAMPLE upstream (not a real model): ${gateway.proxy.sampleUpstream}`);
  }
  if (gateway.mqtt)
    lines.push(
      `  Devices: MQTT ${gateway.mqtt.mqttUrl}${gateway.mqtt.embedded ? ' (embedded broker)' : ''}, HTTP ${gateway.url}/v1/device`,
    );
  if (gateway.newOperatorKey) {
    lines.push(
      '',
      '  Operator key (shown once; only its hash is stored — set COULOMB_OPERATOR_KEY to choose your own):',
    );
    lines.push(`    ${gateway.newOperatorKey}`);
  }
  const key = gateway.newOperatorKey ?? '$COULOMB_OPERATOR_KEY';
  lines.push(
    '',
    '  Try it:',
    `    curl ${gateway.url}/health`,
    `    curl -H "Authorization: Bearer ${key}" ${gateway.url}/v1/node`,
  );
  // The sample requests only when the sample service runs: configured services are the operator's.
  if (gateway.proxy?.sampleUpstream) {
    const body = `'{"model":"sample-small","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'`;
    lines.push(
      `    curl -i -X POST ${gateway.proxy.url}/v1/chat/completions -H 'content-type: application/json' -d ${body}   # 402 + invoice`,
    );
    lines.push(
      `    npx coulomb l402 fetch ${gateway.proxy.url}/v1/chat/completions --data ${body}   # bob pays; you get the answer`,
    );
  }
  lines.push('');
  process.stdout.write(lines.join('\n') + '\n');
}
