import { pinnedRequest, type OutboundGuard } from './outbound.js';

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
    const answer = await pinnedRequest(url, addresses, {
      method: request.method,
      headers,
      body,
      timeoutMs,
      maxBytes,
    });
    const out = new Headers();
    for (const [k, v] of Object.entries(answer.headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) out.append(k, one);
    }
    const nullBody = answer.status === 204 || answer.status === 304 || request.method === 'HEAD';
    return new Response(nullBody ? null : answer.body, { status: answer.status, headers: out });
  };
  return f as typeof fetch;
}
