import { EventEmitter } from 'node:events';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf, balanceOf } from '../ledger/types.js';
import type { AccountEvent } from './types.js';

type EventType = AccountEvent['type'];

/** Per-account live events (payments, invoices, balances, approvals, alerts). */
export class EventBus {
  private readonly emitter = new EventEmitter();
  /** Listeners to every account's events of any type. */
  private everyType = 0;
  /** Listeners to every account's events of some types only, counted by type. */
  private readonly byType = new Map<EventType, number>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(accountId: string, event: AccountEvent): void {
    this.emitter.emit(accountId, event);
    this.emitter.emit('*', accountId, event);
  }

  /** Whether anyone would receive an event of this type for this account (skip the work if not). */
  wants(accountId: string, type: EventType): boolean {
    return (
      this.emitter.listenerCount(accountId) > 0 || this.everyType > 0 || (this.byType.get(type) ?? 0) > 0
    );
  }

  subscribe(accountId: string, listener: (event: AccountEvent) => void): () => void {
    this.emitter.on(accountId, listener);
    return () => this.emitter.off(accountId, listener);
  }

  /** Every account's events, or only those of the given types. */
  subscribeAll(
    listener: (accountId: string, event: AccountEvent) => void,
    types?: readonly EventType[],
  ): () => void {
    const only = types ? new Set(types) : undefined;
    const l = only
      ? (accountId: string, event: AccountEvent) => {
          if (only.has(event.type)) listener(accountId, event);
        }
      : listener;
    this.count(only, 1);
    this.emitter.on('*', l);
    return () => {
      if (this.emitter.listeners('*').includes(l)) this.count(only, -1);
      this.emitter.off('*', l);
    };
  }

  private count(types: Set<EventType> | undefined, delta: number): void {
    if (!types) this.everyType += delta;
    else for (const t of types) this.byType.set(t, (this.byType.get(t) ?? 0) + delta);
  }
}

/**
 * The one place `balance` events come from: every durable ledger batch that moved funds, whatever
 * moved them (payments, invoices, transfers, funding, escrow, streams, proxy charges), gives one
 * event per account it touched, with the figures as of that batch — and only for accounts someone
 * listens to. Returns a function that stops it.
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
