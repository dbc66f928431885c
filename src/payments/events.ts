import { EventEmitter } from 'node:events';
import type { AccountEvent } from './types.js';

/** Per-account live events (payments, invoices, balances, approvals, alerts). */
export class EventBus {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(accountId: string, event: AccountEvent): void {
    this.emitter.emit(accountId, event);
    this.emitter.emit('*', accountId, event);
  }

  subscribe(accountId: string, listener: (event: AccountEvent) => void): () => void {
    this.emitter.on(accountId, listener);
    return () => this.emitter.off(accountId, listener);
  }

  subscribeAll(listener: (accountId: string, event: AccountEvent) => void): () => void {
    this.emitter.on('*', listener);
    return () => this.emitter.off('*', listener);
  }
}
