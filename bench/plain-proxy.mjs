// The proxy benchmark's baseline, in its own process: a minimal node:http reverse proxy to one
// upstream (keep-alive agent, no payment). `node bench/plain-proxy.mjs <upstream url>`.
import { Agent, createServer, request } from 'node:http';
import process from 'node:process';
import { URL } from 'node:url';

const upstream = new URL(process.argv[2]);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const server = createServer((req, res) => {
  const up = request(
    new URL(req.url ?? '/', upstream),
    { method: req.method, headers: { ...req.headers, host: upstream.host }, agent },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`plain proxy listening on http://127.0.0.1:${server.address().port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(0));
