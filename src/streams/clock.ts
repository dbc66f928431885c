import { performance } from 'node:perf_hooks';

/** Time and timers, injectable for tests. `now` is in ms on a monotonic scale (may be fractional). */
export interface Clock {
  now(): number;
  /** Runs `fn` once after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** Wall-clock milliseconds on the monotonic timer (no jumps when the system clock is adjusted). */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

/**
 * One timer on a fixed grid (multiples of `periodMs`). Each firing reports the grid time it
 * stands for; when the process was blocked for longer than a period, the missed grid points
 * collapse into one tick at the latest one (accrual works on total time, so nothing is lost).
 */
export class Ticker {
  private cancel: (() => void) | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly periodMs: number,
    private readonly onTick: (scheduledAt: number) => void,
  ) {}

  get running(): boolean {
    return this.cancel !== undefined;
  }

  start(): void {
    if (this.cancel) return;
    this.arm(Math.floor(this.clock.now() / this.periodMs) * this.periodMs + this.periodMs);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  private arm(at: number): void {
    this.cancel = this.clock.setTimer(() => this.fire(at), Math.max(0, at - this.clock.now()));
  }

  private fire(expected: number): void {
    const latest = Math.floor(this.clock.now() / this.periodMs) * this.periodMs;
    const scheduledAt = latest > expected ? latest : expected;
    try {
      this.onTick(scheduledAt);
    } finally {
      if (this.cancel) this.arm(scheduledAt + this.periodMs);
    }
  }
}
