import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { PassThrough, type PassThroughRoute } from '../../../src/proxy/pass-through.js';

/** An upstream: /small answers 200 with a short body, /big 1 MiB in 16 KiB chunks, /early a 103 first. */
let upstream: Server;
let origin: string;
const agent = new Agent({ connections: 8 });
const BIG = 1024 * 1024;

const listen = (s: Server): Promise<string> =>
  new Promise((r) =>
    s.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(s.address() as { port: number }).port}`)),
  );

beforeAll(async () => {
  upstream = createServer((req, res) => {
    if (req.url === '/early') {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.writeHead(200, { 'content-type': 'text/plain', 'x-up': '1' });
      return void res.end('after hints');
    }
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
      const chunk = Buffer.alloc(16 * 1024, 7);
      let sent = 0;
      const more = (): void => {
        while (sent < BIG) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      return more();
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-up': '1' });
    res.end('small body');
  });
  origin = await listen(upstream);
});

afterAll(async () => {
  await agent.close();
  await new Promise((r) => upstream.close(r));
});

/**
 * A server answering each request through a PassThrough of the upstream's `path`; `head` decides
 * (and writes) the head. Returns what the client received.
 */
async function through(
  path: string,
  head: (res: ServerResponse, status: number, headers: IncomingHttpHeaders) => void | Promise<void>,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer; failed: Error[] }> {
  const failed: Error[] = [];
  const server = createServer((_req, res) => {
    const route: PassThroughRoute = {
      head: (status, headers) => head(res, status, headers),
      failed: (err) => {
        failed.push(err);
        res.writeHead(502).end();
      },
      broken: () => undefined,
    };
    agent.dispatch({ origin, path, method: 'GET', headers: {} }, new PassThrough(res, route));
  });
  const url = await listen(server);
  try {
    return await new Promise((resolve, reject) => {
      request(`${url}/`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), failed }),
        );
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

const writeNow = (res: ServerResponse, status: number, headers: IncomingHttpHeaders): void =>
  void res.writeHead(status, { 'content-type': String(headers['content-type']), 'x-own': 'yes' });

describe('PassThrough', () => {
  it('writes the head at once and passes the body through untouched', async () => {
    const r = await through('/small', writeNow);
    expect(r.status).toBe(200);
    expect(r.headers['x-own']).toBe('yes');
    expect(r.body.toString()).toBe('small body');
  });

  it('holds the body while the head waits, then delivers all of it after the head', async () => {
    let headWritten = false;
    const r = await through('/small', async (res, status, headers) => {
      // The whole small body has arrived meanwhile: it must not leave before the head.
      await new Promise((resolve) => setTimeout(resolve, 50));
      headWritten = true;
      writeNow(res, status, headers);
    });
    expect(headWritten).toBe(true);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('small body');
  });

  it('delivers a large body whole, more than is held while the head waits', async () => {
    const r = await through('/big', async (res, status, headers) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      res.writeHead(status, {
        'content-type': String(headers['content-type']),
        'content-length': String(headers['content-length']),
      });
    });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(BIG);
    expect(r.body.every((b) => b === 7)).toBe(true);
  });

  it('passes no informational answer on: the head is the final one', async () => {
    const statuses: number[] = [];
    const r = await through('/early', (res, status, headers) => {
      statuses.push(status);
      writeNow(res, status, headers);
    });
    expect(statuses).toEqual([200]);
    expect(r.body.toString()).toBe('after hints');
  });

  it('reports a failure before any head (upstream unreachable) to the route', async () => {
    const dead = createServer();
    const deadOrigin = await listen(dead);
    await new Promise((r) => dead.close(r));
    const failed: Error[] = [];
    const server = createServer((_req, res) => {
      agent.dispatch(
        { origin: deadOrigin, path: '/', method: 'GET', headers: {} },
        new PassThrough(res, {
          head: () => {
            throw new Error('no head expected');
          },
          failed: (err) => {
            failed.push(err);
            res.writeHead(502).end();
          },
          broken: () => undefined,
        }),
      );
    });
    const url = await listen(server);
    const status = await new Promise<number>((resolve, reject) =>
      request(`${url}/`, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
        .on('error', reject)
        .end(),
    );
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(status).toBe(502);
    expect(failed).toHaveLength(1);
  });

  it('a head that fails cuts the client off instead of sending a wrong answer', async () => {
    const server = createServer((_req, res) => {
      agent.dispatch(
        { origin, path: '/small', method: 'GET', headers: {} },
        new PassThrough(res, {
          head: () => Promise.reject(new Error('refund failed')),
          failed: () => undefined,
          broken: () => undefined,
        }),
      );
    });
    const url = await listen(server);
    const outcome = await new Promise<string>((resolve) =>
      request(`${url}/`, (res) => resolve(`answered ${res.statusCode}`))
        .on('error', (err) => resolve(`cut off: ${(err as NodeJS.ErrnoException).code}`))
        .end(),
    );
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(outcome).toBe('cut off: ECONNRESET');
  });
});
