#!/usr/bin/env node
// SAMPLE UPSTREAM as its own process: `node dist/sample-upstream/main.js [port] [tokenDelayMs]`.
import { startSampleUpstream } from './server.js';

const port = Number(process.argv[2] ?? 8404);
const tokenDelayMs = Number(process.argv[3] ?? 20);
const { url } = await startSampleUpstream({ port, tokenDelayMs });
process.stdout.write(`sample upstream listening on ${url}\n`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(0));
