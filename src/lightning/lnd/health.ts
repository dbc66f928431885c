import { EventEmitter } from 'node:events';
import { getHeight } from 'ln-service';
import type { ConnectionState } from '../types.js';
import type { LndContext } from './context.js';
import { rejectAfter } from './with-timeout.js';

export interface HealthMonitorOptions {
  intervalMs?: number;
  /** Consecutive failed probes before the node counts as disconnected. */
  failuresBeforeDown?: number;
}

/**
 * Probes LND with a cheap call on an interval. gRPC reconnects the channel by itself; the monitor
 * tells the rest of the gateway when calls will fail and when they work again.
 */
export class HealthMonitor {
  private state: ConnectionState = 'disconnected';
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly events = new EventEmitter();
  private readonly intervalMs: number;
  private readonly failuresBeforeDown: number;

  constructor(
    private readonly ctx: LndContext,
    options: HealthMonitorOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.failuresBeforeDown = options.failuresBeforeDown ?? 2;
  }

  get current(): ConnectionState {
    return this.state;
  }

  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      void this.probe().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  onChange(listener: (state: ConnectionState) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  async probe(): Promise<ConnectionState> {
    try {
      // A half-open connection never answers: a probe that hangs counts as a failure.
      await rejectAfter(
        getHeight({ lnd: this.ctx.lnd }),
        Math.max(1000, this.intervalMs),
        () => new Error('probe timed out'),
      );
      this.failures = 0;
      this.set('connected');
    } catch {
      this.failures += 1;
      if (this.failures >= this.failuresBeforeDown) this.set('disconnected');
    }
    return this.state;
  }

  private set(state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    this.events.emit('change', state);
  }
}
