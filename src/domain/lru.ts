/**
 * A bounded cache of recently used entries, least recently used out first — except entries
 * touched within the last `pinMs`, which are never evicted (the cache may then hold more than
 * `max` for a while). So `await load(x)` immediately followed by a synchronous step that reads x
 * is safe: x cannot be evicted between the two, however many other entries were loaded meanwhile.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, { value: V; at: number }>();

  constructor(
    readonly max: number,
    private readonly now: () => number = Date.now,
    /** 0: no pin, least recently used out as soon as the cache is over its size. */
    readonly pinMs = 60_000,
    /** Entries this says to keep (e.g. an account with money in flight) are never evicted. */
    private readonly keep: (key: K) => boolean = () => false,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /** The entry (and marks it used), or undefined when it is not resident. */
  get(key: K): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    this.entries.delete(key);
    e.at = this.now();
    this.entries.set(key, e);
    return e.value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: this.now() });
    this.evict();
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  private evict(): void {
    if (this.entries.size <= this.max) return;
    const pinnedSince = this.now() - this.pinMs;
    // Oldest first: stop at the first entry used within the pin window (all later ones are newer).
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.max || e.at > pinnedSince) return;
      if (!this.keep(key)) this.entries.delete(key);
    }
  }
}
