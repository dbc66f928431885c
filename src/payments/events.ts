import { EventEmitter } from 'node:events';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf, balanceOf } from '../ledger/types.js';
import type { EventInterest, EventRelay, EventType, RelayedBus } from './event-relay.js';
import type { AccountEvent } from './types.js';

export interface SubscribeOptions {
  /**
   * Also the events published on the other instances of a shared store (the clients' event
   * streams). Without it, only this instance's: consumers that act on events (device commerce,
   * the energy market, metrics) act once, where the event happened.
   */
  everyInstance?: boolean;
}

/** Listeners of one reach: this instance's events only, or every instance's. */
class Listeners {
  readonly emitter = new EventEmitter();
  /** Listeners to every account's events of any type. */
  everyType = 0;
  /** Listeners to every account's events of some types only, counted by type. */
  readonly byType = new Map<EventType, number>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  emit(accountId: string, event: AccountEvent): void {
    this.emitter.emit(accountId, event);
    this.emitter.emit('*', accountId, event);
  }

  wants(accountId: string, type: EventType): boolean {
    return (
      this.emitter.listenerCount(accountId) > 0 || this.everyType > 0 || (this.byType.get(type) ?? 0) > 0
    );
  }

  count(types: Set<EventType> | undefined, delta: number): void {
    if (!types) this.everyType += delta;
    else for (const t of types) this.byType.set(t, (this.byType.get(t) ?? 0) + delta);
  }

  types(): EventType[] {
    return [...this.byType].filter(([, n]) => n > 0).map(([t]) => t);
  }
}

/**
 * Per-account live events (payments, invoices, balances, approvals, alerts). On a shared store a
 * relay (`relayTo`) carries them to the other instances' subscribers to every instance's events.
 */
export class EventBus implements RelayedBus {
  private readonly here = new Listeners();
  private readonly everywhere = new Listeners();
  private relay: EventRelay | undefined;

  publish(accountId: string, event: AccountEvent): void {
    this.here.emit(accountId, event);
    this.everywhere.emit(accountId, event);
    if (this.relay?.wants(accountId, event.type)) this.relay.send(accountId, event);
  }

  receive(accountId: string, event: AccountEvent): void {
    this.everywhere.emit(accountId, event);
  }

  /**
   * Whether anyone would receive an event of this type for this account (skip the work if not):
   * a subscriber here, or one on another instance that asked for it through the relay.
   */
  wants(accountId: string, type: EventType): boolean {
    return (
      this.here.wants(accountId, type) ||
      this.everywhere.wants(accountId, type) ||
      (this.relay?.wants(accountId, type) ?? false)
    );
  }

  subscribe(
    accountId: string,
    listener: (event: AccountEvent) => void,
    options: SubscribeOptions = {},
  ): () => void {
    const to = options.everyInstance ? this.everywhere : this.here;
    const first = options.everyInstance && to.emitter.listenerCount(accountId) === 0;
    to.emitter.on(accountId, listener);
    if (first) this.relay?.accountInterest(accountId, true);
    return () => {
      const had = to.emitter.listeners(accountId).includes(listener);
      to.emitter.off(accountId, listener);
      if (had && options.everyInstance && to.emitter.listenerCount(accountId) === 0)
        this.relay?.accountInterest(accountId, false);
    };
  }

  /** Every account's events, or only those of the given types. */
  subscribeAll(
    listener: (accountId: string, event: AccountEvent) => void,
    types?: readonly EventType[],
    options: SubscribeOptions = {},
  ): () => void {
    const to = options.everyInstance ? this.everywhere : this.here;
    const only = types ? new Set(types) : undefined;
    const l = only
      ? (accountId: string, event: AccountEvent) => {
          if (only.has(event.type)) listener(accountId, event);
        }
      : listener;
    to.count(only, 1);
    to.emitter.on('*', l);
    if (options.everyInstance) this.announceTypes();
    return () => {
      if (!to.emitter.listeners('*').includes(l)) return;
      to.count(only, -1);
      to.emitter.off('*', l);
      if (options.everyInstance) this.announceTypes();
    };
  }

  interest(): EventInterest {
    return {
      all: this.everywhere.everyType > 0,
      types: this.everywhere.types(),
      accounts: this.everywhere.emitter
        .eventNames()
        .filter((n): n is string => typeof n === 'string' && n !== '*'),
    };
  }

  relayTo(relay: EventRelay): () => void {
    this.relay = relay;
    return () => {
      if (this.relay === relay) this.relay = undefined;
    };
  }

  private announceTypes(): void {
    this.relay?.typeInterest(this.everywhere.everyType > 0, this.everywhere.types());
  }
}

/**
 * The one place `balance` events come from: every durable ledger batch that moved funds, whatever
 * moved them (payments, invoices, transfers, funding, escrow, streams, proxy charges), gives one
 * event per account it touched, with the figures as of that batch — and only for accounts someone
 * listens to (here, or on another instance through the relay). Returns a function that stops it.
 */
export function publishBalanceEvents(ledger: Ledger, bus: EventBus): () => void {
  return ledger.on('change', ({ accounts }) => {
    for (const a of accounts) {
      if (!bus.wants(a.id, 'balance')) continue;
      bus.publish(a.id, {
        type: 'balance',
        accountId: a.id,
        balanceMsat: balanceOf(a).toString(),
        availableMsat: availableOf(a).toString(),
      });
    }
  });
}
