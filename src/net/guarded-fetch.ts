import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { bare, OutboundError, OutboundErrorCode, pinnedLookup, type OutboundGuard } from './outbound.js';

/**
 * A `fetch` for URLs an untrusted party chooses (an agent's paid fetch): every call goes through
 * the `OutboundGuard` rule (public unicast after DNS, or the operator's allowlist; the
 * connection pinned to the checked addresses), redirects are returned, never followed, and the
 * answer is read up to `maxBytes`. A refused URL throws `OUTBOUND_URL_FORBIDDEN`.
 */
export function guardedFetch(
  guard: OutboundGuard,
  options: { timeoutMs?: number; maxBytes?: number } = {},
): typeof fetch {
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const { url, addresses } = await guard.target(request.url);
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => (headers[k] = v));
    if (body) headers['content-length'] = String(body.length);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      let settled = false;
      const fail = (message: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(new OutboundError(OutboundErrorCode.FAILED, message));
      };
      const req = send(
        {
          protocol: url.protocol,
          host: bare(url.hostname),
          port: url.port === '' ? undefined : Number(url.port),
          path: url.pathname + url.search,
          method: request.method,
          headers,
          lookup: pinnedLookup(addresses),
          agent: false,
        },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > maxBytes) fail(`the answer is larger than ${maxBytes} bytes`);
            else chunks.push(c);
          });
          res.on('error', (err) => fail(err.message));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            const out = new Headers();
            for (const [k, v] of Object.entries(res.headers)) {
              if (v === undefined) continue;
              for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
            }
            const status = res.statusCode ?? 502;
            const nullBody = status === 204 || status === 304 || request.method === 'HEAD';
            resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: out }));
          });
        },
      );
      const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
      req.on('error', (err) => fail(err.message));
      req.end(body);
    });
  };
  return f as typeof fetch;
}
