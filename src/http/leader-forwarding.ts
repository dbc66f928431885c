import { Readable } from 'node:stream';
import { HOP_BY_HOP } from '../net/hop-by-hop.js';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FORWARDED_BY, type LeaderOwnedServices } from '../cluster/leader-owned.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Served by the instance that owns the live state (streams, escrows, tasks, auctions, energy,
     * device commerce): on a shared store, a follower forwards the request to the leader.
     */
    leaderOwned?: boolean;
  }
}

/** A forward not answered within this (ms) is given up with a 503 (the leader may be gone). */
const FORWARD_TIMEOUT_MS = 30_000;

/** Headers of one hop, and those the forwarding sets itself, never passed on. */
const HOP = new Set([...HOP_BY_HOP, 'host', 'content-length']);

const unavailable = (reply: FastifyReply, message: string) =>
  reply
    .code(503)
    .header('retry-after', '1')
    .send({ error: { code: 'LEADER_UNAVAILABLE', message } });

/**
 * An `onRequest` hook (after authentication) for leader-owned routes: on a shared store, a
 * follower passes the request as it came (method, path, headers, body) to the leader's advertised
 * address and the leader's answer back; the leader authenticates it again, with the client's own
 * credentials. Where the requests go comes from the leader's record in the store, which only the
 * elected instance writes, never from the request. Without a leader reachable (an election under
 * way), a 503 LEADER_UNAVAILABLE with Retry-After: nothing was done, the client retries.
 */
export function leaderForwarding(owned: LeaderOwnedServices | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    if (!owned || req.routeOptions.config.leaderOwned !== true) return;
    const leader = await owned.target(req.headers[FORWARDED_BY] !== undefined);
    if (!leader) return;
    if ('unavailable' in leader) return unavailable(reply, leader.unavailable);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP.has(name)) continue;
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    headers.set(FORWARDED_BY, owned.instanceId);
    headers.append('x-forwarded-for', req.ip);
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    let res: Response;
    try {
      // The leader's address and the request's path joined as text: never `new URL(path, base)`,
      // which would let a path like `//host/...` choose the host.
      const target = leader.url.replace(/\/+$/, '') + (req.url.startsWith('/') ? req.url : `/${req.url}`);
      res = await fetch(target, {
        method: req.method,
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
        ...(hasBody ? { body: Readable.toWeb(req.raw) as ReadableStream<Uint8Array>, duplex: 'half' } : {}),
      } as RequestInit);
    } catch {
      // Sent or not, the leader did not answer: it may have acted. The client's retry (with its
      // idempotency key where the route takes one) finds out.
      owned.directory?.forget();
      return unavailable(reply, 'the leader did not answer; retry');
    }
    reply.code(res.status);
    res.headers.forEach((value, name) => {
      // fetch decoded the body: its length and encoding are the leader's, not ours.
      if (!HOP.has(name) && name !== 'content-encoding') void reply.header(name, value);
    });
    if (!res.body) return reply.send();
    return reply.send(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>));
  };
}
