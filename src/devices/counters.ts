/** What a shared counter store says of a request counter. */
export type CounterClaim = { accepted: true } | { accepted: false; last: number; revoked: boolean };

/**
 * What the instances of one deployment must agree on about each device, when several share one
 * store (PostgreSQL): its request counter, its event numbers and its revocation, each checked and
 * written in one atomic step that every instance goes through. A request replayed to another
 * instance is refused, two instances never number two events of a device alike, and a device
 * revoked on one instance is refused by all. Without one (the embedded store, one process) the
 * registry's memory is the whole rule.
 */
export interface DeviceCounterStore {
  /**
   * Takes `counter` as the device's last counter if it is above the one stored (a device with no
   * counter stored takes any) and the device is not revoked: `accepted: true`; otherwise nothing
   * changes, and `last` is the stored counter. Resolves once the change is durable.
   */
  advance(deviceId: string, counter: number): Promise<CounterClaim>;
  /** The device's next event number: one above the last handed out, and at least `atLeast`. */
  nextEventSeq(deviceId: string, atLeast: number): Promise<number>;
  /** Marks the device revoked for every instance (its next request is refused everywhere). */
  revoke(deviceId: string): Promise<void>;
}
