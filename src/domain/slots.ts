/** A place under a cap, held while something is being created; release it once (more calls do nothing). */
export interface Slot {
  release(): void;
}

/**
 * A cap on things whose creation spans an await (a hold invoice from LND, a durable write). The
 * check and the taking are one synchronous step, so concurrent requests cannot all pass the check
 * before any of them counts. `held(key)` counts what already exists, read from the caller's own
 * state; the slots count what is being created. Release a slot when its creation fails, or in the
 * same synchronous step that makes `held` count what it created.
 */
export class CappedSlots {
  private readonly creating = new Map<string, number>();

  constructor(
    readonly cap: number,
    private readonly held: (key: string) => number,
  ) {}

  /** A slot under the cap for `key`, or undefined when the cap is reached. */
  take(key: string): Slot | undefined {
    const busy = this.creating.get(key) ?? 0;
    if (this.held(key) + busy >= this.cap) return undefined;
    this.creating.set(key, busy + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (this.creating.get(key) ?? 1) - 1;
        if (left > 0) this.creating.set(key, left);
        else this.creating.delete(key);
      },
    };
  }
}
