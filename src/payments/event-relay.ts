import type { AccountEvent } from './types.js';

export type EventType = AccountEvent['type'];

/**
 * What this instance's subscribers to every instance's events listen to (only those: a
 * subscriber to this instance's events alone asks the other instances for nothing).
 */
export interface EventInterest {
  /** Some subscriber takes every account's events of any type. */
  all: boolean;
  /** Types some subscriber takes for every account. */
  types: EventType[];
  /** Accounts with a subscriber of their own (all their types). */
  accounts: string[];
}

/**
 * Carries the account events published on this instance to the other instances of a shared store,
 * and theirs to this one (PostgreSQL LISTEN/NOTIFY in `src/storage/postgres/`). Wired by the
 * composition root only when several instances can exist (a database URL).
 */
export interface EventRelay {
  /** Whether a subscriber on another instance would receive this event (from what they announced). */
  wants(accountId: string, type: EventType): boolean;
  /** Hands an event published here to the other instances, in publish order. */
  send(accountId: string, event: AccountEvent): void;
  /** An account gained its first (`true`) or lost its last subscriber to every instance's events here. */
  accountInterest(accountId: string, wanted: boolean): void;
  /** The every-account subscribers here changed what they take. */
  typeInterest(all: boolean, types: EventType[]): void;
}

/** The bus as the relay sees it. */
export interface RelayedBus {
  /** What this instance's subscribers to every instance's events listen to now. */
  interest(): EventInterest;
  /** An event published on another instance: delivered to this one's subscribers to every instance. */
  receive(accountId: string, event: AccountEvent): void;
  /** Sends this instance's events through `relay` from now on; the returned function stops it. */
  relayTo(relay: EventRelay): () => void;
}
