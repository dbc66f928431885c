import { describe, expect, it } from 'vitest';
import type { EventRelay, EventType } from '../../../src/payments/event-relay.js';
import { EventBus } from '../../../src/payments/events.js';
import type { AccountEvent } from '../../../src/payments/types.js';

/** A relay that records what the bus tells it, and wants what `remote` says. */
function fakeRelay(remote: (accountId: string, type: EventType) => boolean) {
  const sent: [string, AccountEvent][] = [];
  const calls: string[] = [];
  const relay: EventRelay = {
    wants: remote,
    send: (accountId, event) => sent.push([accountId, event]),
    accountInterest: (accountId, wanted) => calls.push(`${wanted ? '+' : '-'}${accountId}`),
    typeInterest: (all, types) => calls.push(`t:${all}:${types.join(',')}`),
  };
  return { relay, sent, calls };
}

const alert = (code: string): AccountEvent => ({ type: 'alert', accountId: 'a', code, message: code });

describe('the event bus with a relay to other instances', () => {
  it("gives another instance's events only to subscribers to every instance's", () => {
    const bus = new EventBus();
    const here: AccountEvent[] = [];
    const everywhere: AccountEvent[] = [];
    const all: AccountEvent[] = [];
    bus.subscribe('a', (e) => here.push(e));
    bus.subscribe('a', (e) => everywhere.push(e), { everyInstance: true });
    bus.subscribeAll((_id, e) => all.push(e), ['alert'], { everyInstance: true });
    bus.publish('a', alert('local'));
    bus.receive('a', alert('remote'));
    expect(here).toEqual([alert('local')]);
    expect(everywhere).toEqual([alert('local'), alert('remote')]);
    expect(all).toEqual([alert('local'), alert('remote')]);
  });

  it('sends what another instance wants, and builds balance events for it', () => {
    const bus = new EventBus();
    const { relay, sent } = fakeRelay((id, type) => id === 'b' && type === 'balance');
    const detach = bus.relayTo(relay);
    expect(bus.wants('b', 'balance')).toBe(true);
    expect(bus.wants('a', 'balance')).toBe(false);
    const balance: AccountEvent = { type: 'balance', accountId: 'b', balanceMsat: '1', availableMsat: '1' };
    bus.publish('b', balance);
    bus.publish('a', alert('nobody wants it'));
    expect(sent).toEqual([['b', balance]]);
    detach();
    expect(bus.wants('b', 'balance')).toBe(false);
    bus.publish('b', balance);
    expect(sent).toHaveLength(1);
  });

  it('tells the relay what its subscribers to every instance want, on first and last', () => {
    const bus = new EventBus();
    const { relay, calls } = fakeRelay(() => false);
    bus.relayTo(relay);
    const offLocal = bus.subscribe('a', () => undefined);
    const off1 = bus.subscribe('a', () => undefined, { everyInstance: true });
    const off2 = bus.subscribe('a', () => undefined, { everyInstance: true });
    const offAll = bus.subscribeAll(() => undefined, ['payment', 'invoice'], { everyInstance: true });
    expect(bus.interest()).toEqual({ all: false, types: ['payment', 'invoice'], accounts: ['a'] });
    off1();
    off1();
    off2();
    offAll();
    offAll();
    offLocal();
    expect(calls).toEqual(['+a', 't:false:payment,invoice', '-a', 't:false:']);
    expect(bus.interest()).toEqual({ all: false, types: [], accounts: [] });
  });
});
