import { FORWARDED_BY, type LeaderOwnedServices } from '../cluster/leader-owned.js';
import type { BridgeForward, BridgeReply } from './bridge.js';
import type { ResponseEnvelope } from './envelope.js';

const RELAY_TIMEOUT_MS = 30_000;

const unavailable = (message: string): BridgeReply => ({
  status: 503,
  error: { code: 'LEADER_UNAVAILABLE', message },
});

/**
 * The device bridge's relay of leader-owned methods (device commerce, energy) on a shared store:
 * a follower posts the envelope as it came to the leader's `/v1/device` and hands its signed
 * answer back, whichever transport (HTTP, MQTT) brought the request. Nothing is verified or
 * counted here, so a relayed request is checked and counted once, by the leader. Without a
 * leader reachable the device gets LEADER_UNAVAILABLE (unsigned, as every refusal before
 * authentication is) and retries with a new counter.
 */
export function leaderRelay(owned: LeaderOwnedServices, methods: Iterable<string>): BridgeForward {
  const owns = new Set(methods);
  return {
    owns: (method) => owned.shared && owns.has(method),
    async send(raw, relayed) {
      const leader = await owned.target(relayed);
      if (!leader) return undefined;
      if ('unavailable' in leader) return unavailable(leader.unavailable);
      try {
        const res = await fetch(`${leader.url.replace(/\/+$/, '')}/v1/device`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [FORWARDED_BY]: owned.instanceId },
          body: JSON.stringify(raw),
          signal: AbortSignal.timeout(RELAY_TIMEOUT_MS),
        });
        const body = (await res.json()) as unknown;
        // The leader's own answer, signed by the deployment's device key: passed on as it is.
        if (res.status === 200) return { status: 200, envelope: body as ResponseEnvelope };
        const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
        return {
          status: res.status,
          error: {
            code: typeof error?.code === 'string' ? error.code : 'LEADER_UNAVAILABLE',
            message: typeof error?.message === 'string' ? error.message : `the leader answered ${res.status}`,
          },
        };
      } catch {
        owned.directory?.forget();
        return unavailable('the leader did not answer; retry');
      }
    },
  };
}
