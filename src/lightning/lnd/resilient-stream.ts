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

/**
 * Keeps an ln-service stream open across LND restarts and dropped connections: on error or end it
 * reopens with exponential backoff. `attach` runs on each new stream, so callers resume from
 * whatever position they have persisted.
 */
export function resilientStream(
  options: ResilientStreamOptions,
): Subscription & { readonly reconnects: number } {
  const minBackoff = options.minBackoffMs ?? 250;
  const maxBackoff = options.maxBackoffMs ?? 10_000;
  let closed = false;
  let current: EventEmitter | undefined;
  let backoff = minBackoff;
  let timer: NodeJS.Timeout | undefined;
  let reconnects = 0;

  const retry = (err: unknown): void => {
    if (closed) return;
    if (err !== undefined) options.onError?.(err);
    detach();
    timer = setTimeout(() => {
      reconnects += 1;
      void start();
    }, backoff);
    backoff = Math.min(backoff * 2, maxBackoff);
  };

  const detach = (): void => {
    if (!current) return;
    const sub = current;
    current = undefined;
    sub.removeAllListeners();
    sub.on('error', () => undefined);
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
      // A stream that stays up is healthy again.
      sub.once('status', () => (backoff = minBackoff));
      setTimeout(() => {
        if (current === sub) backoff = minBackoff;
      }, maxBackoff).unref();
    } catch (err) {
      retry(err);
    }
  };

  void start();
  return {
    get reconnects() {
      return reconnects;
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      detach();
    },
  };
}
