// A second baseline of the proxy benchmark, in its own process: the minimal reverse proxy of
// plain-proxy.mjs with the upstream client the gateway uses (undici, keep-alive pool), no payment.
// It tells what the payment costs with the HTTP client held equal.
// `node bench/plain-proxy-undici.mjs <upstream url>`.
import { createServer } from 'node:http';
import { Buffer } from 'node:buffer';
import process from 'node:process';
import { URL } from 'node:url';
import { Agent } from 'undici';

const upstream = new URL(process.argv[2]);
const agent = new Agent({ connections: 256, headersTimeout: 0, bodyTimeout: 0 });
const DROP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length', 'expect']);
const server = createServer((req, res) => {
  const headers = {};
  for (const k in req.headers) if (!DROP.has(k)) headers[k] = req.headers[k];
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length ? Buffer.concat(chunks) : null;
    agent.request({ origin: upstream.origin, path: req.url, method: req.method, headers, body }).then(
      (up) => {
        const out = {};
        for (const k in up.headers) if (k !== 'connection' && k !== 'keep-alive') out[k] = up.headers[k];
        res.writeHead(up.statusCode, out);
        up.body.pipe(res);
      },
      () => res.destroy(),
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`plain proxy listening on http://127.0.0.1:${server.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(0));
