// The L402 benchmarks' load generator, in its own process: autocannon (its programmatic API) with
// a credential list per connection. `node bench/l402-load.mjs '<json spec>'`, the spec:
//   { urls: string[], connections, duration (s), rate?: overall requests/s, method?, body?,
//     contentType?, perConnection?: string[][] }
// Connection i goes to urls[i % urls.length] and cycles through the `authorization` values of
// perConnection[i % perConnection.length], one a request. Prints autocannon's result as JSON,
// with this process's own CPU time (`cpuUs`).
import process from 'node:process';
import autocannon from 'autocannon';

const spec = JSON.parse(process.argv[2]);
const method = spec.method ?? 'GET';
const common = {
  ...(spec.body !== undefined ? { body: spec.body } : {}),
};
const baseHeaders = spec.contentType ? { 'content-type': spec.contentType } : {};
let client = 0;
const cpu0 = process.cpuUsage();
const result = await autocannon({
  url: spec.urls,
  connections: spec.connections,
  duration: spec.duration,
  method,
  headers: baseHeaders,
  ...common,
  ...(spec.rate ? { overallRate: spec.rate } : {}),
  ...(spec.perConnection
    ? {
        // Clients are made in order, so this counter is the connection's index.
        setupClient: (c) => {
          const auths = spec.perConnection[client++ % spec.perConnection.length];
          c.setRequests(
            auths.map((authorization) => ({
              method,
              ...common,
              headers: { ...baseHeaders, authorization },
            })),
          );
        },
      }
    : {}),
});
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ ...result, cpuUs: cpu.user + cpu.system }));
