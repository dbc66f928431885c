/** Token buckets per key (a credential): `requests` per `perSeconds`, refilled continuously. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly requests: number,
    private readonly perSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** 0 if allowed (and counted), else milliseconds until a request would be allowed. */
  take(key: string): number {
    const now = this.now();
    const rate = this.requests / (this.perSeconds * 1000);
    if (this.buckets.size >= 100_000 && !this.buckets.has(key))
      this.buckets.delete(this.buckets.keys().next().value!);
    const b = this.buckets.get(key) ?? { tokens: this.requests, at: now };
    b.tokens = Math.min(this.requests, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) / rate);
  }
}
