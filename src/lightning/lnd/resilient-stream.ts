import type { EventEmitter } from 'node:events';
import type { Subscription } from '../types.js';

export interface ResilientStreamOptions {
  /** Opens the underlying ln-service subscription (again, after an error). */
  open: () => Promise<EventEmitter> | EventEmitter;
  /** Wires the data listeners onto a freshly opened subscription. */
  attach: (sub: EventEmitter) => void;
  onError?: (err: unknown) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface ResilientSubscription extends Subscription {
  /** Drops the current stream and opens a new one now (e.g. when LND is reachable again). */
  reconnect(): void;
  readonly reconnects: number;
}

/**
 * Keeps an ln-service stream open across LND restarts and dropped connections: on error or end it
 * reopens with exponential backoff. `attach` runs on each new stream, so callers resume from
 * whatever position they have persisted. A stream counts as healthy again once it has stayed
 * open for `maxBackoffMs` (gRPC's status event only comes when a call ends).
 */
export function resilientStream(options: ResilientStreamOptions): ResilientSubscription {
  const minBackoff = options.minBackoffMs ?? 250;
  const maxBackoff = options.maxBackoffMs ?? 10_000;
  let closed = false;
  let current: EventEmitter | undefined;
  let backoff = minBackoff;
  let timer: NodeJS.Timeout | undefined;
  let healthy: NodeJS.Timeout | undefined;
  let reconnects = 0;

  const detach = (): void => {
    if (healthy) clearTimeout(healthy);
    if (!current) return;
    const sub = current;
    current = undefined;
    sub.removeAllListeners();
    sub.on('error', () => undefined);
  };

  const schedule = (delay: number): void => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      reconnects += 1;
      void start();
    }, delay);
  };

  const retry = (err: unknown): void => {
    if (closed) return;
    if (err !== undefined) options.onError?.(err);
    detach();
    schedule(backoff);
    backoff = Math.min(backoff * 2, maxBackoff);
  };

  const start = async (): Promise<void> => {
    if (closed) return;
    try {
      const sub = await options.open();
      if (closed) {
        sub.removeAllListeners();
        return;
      }
      current = sub;
      sub.once('error', (err: unknown) => retry(err));
      sub.once('end', () => retry(undefined));
      options.attach(sub);
      healthy = setTimeout(() => {
        if (current === sub) backoff = minBackoff;
      }, maxBackoff);
      healthy.unref();
    } catch (err) {
      retry(err);
    }
  };

  void start();
  return {
    get reconnects() {
      return reconnects;
    },
    reconnect() {
      if (closed) return;
      detach();
      backoff = minBackoff;
      schedule(0);
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      detach();
    },
  };
}
