import { randomUUID } from 'node:crypto';
import postgres, { type Sql } from 'postgres';
import type { Logger } from 'pino';
import type { EventRelay, EventType, RelayedBus } from '../../payments/event-relay.js';
import type { AccountEvent } from '../../payments/types.js';
import {
  decodeMessage,
  encodeMessage,
  FrameAssembler,
  frames,
  type RelayMessage,
} from './event-relay-wire.js';

/** The NOTIFY channel of account events (notifications are per database). */
export const EVENT_CHANNEL = 'coulomb_events';
/** Frames waiting for the database beyond this are dropped (a stalled database must not grow memory). */
const MAX_QUEUED_FRAMES = 10_000;
/** Accounts per `+`/`-` message. */
const ACCOUNTS_PER_MESSAGE = 100;

export interface PostgresEventRelayOptions {
  log?: Logger;
  /** This instance's id on the channel (a random UUID by default). */
  instanceId?: string;
  /** The NOTIFY channel (default EVENT_CHANNEL). */
  channel?: string;
}

/** What another instance's subscribers to every instance's events listen to. */
interface PeerInterest {
  all: boolean;
  types: Set<EventType>;
  accounts: Set<string>;
}

/**
 * Account events across the instances of one PostgreSQL database, by LISTEN/NOTIFY.
 *
 * - Each instance sends on its own connection (`max: 1`, so its notifications commit in publish
 *   order) and listens on another (postgres.js reconnects it). Frames carry the sender's id; an
 *   instance ignores its own.
 * - Only what another instance wants is sent: instances announce what their subscribers to every
 *   instance's events (the clients' streams) listen to — accounts, and the types of the operator
 *   feed — and `wants` answers from that. With no client connected elsewhere nothing is sent.
 * - A message over one NOTIFY payload (8000 bytes) is cut into frames sent by one statement,
 *   so they arrive together and are put back together (at most MAX_FRAMES, about 1 MB; a larger
 *   event is logged `EVENT_TOO_LARGE` and not relayed).
 * - Delivery is at most once and live only: an event published while the listening connection is
 *   down, or before a subscriber's interest reached the sender, is not relayed (clients read the
 *   paged history routes). After reconnecting an instance asks the others to announce again.
 * - Nothing is kept per event: frames wait for the database in one bounded queue, and incoming
 *   frames are held only until their message is whole.
 */
export class PostgresEventRelay implements EventRelay {
  readonly instanceId: string;
  private readonly channel: string;
  private readonly log: Logger | undefined;
  private readonly peers = new Map<string, PeerInterest>();
  private readonly assembler = new FrameAssembler();
  private queue: string[] = [];
  private flushing: Promise<void> | undefined;
  private messageNo = 0;
  private dropping = false;
  private detach: (() => void) | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private closed = false;

  private constructor(
    private readonly sql: Sql,
    private readonly bus: RelayedBus,
    options: PostgresEventRelayOptions,
  ) {
    this.instanceId = options.instanceId ?? randomUUID();
    this.channel = options.channel ?? EVENT_CHANNEL;
    this.log = options.log;
  }

  /** Listens on the channel, then relays `bus`'s events until `close`. */
  static async open(
    url: string,
    bus: RelayedBus,
    options: PostgresEventRelayOptions = {},
  ): Promise<PostgresEventRelay> {
    const sql = postgres(url, {
      max: 1,
      onnotice: () => undefined,
      connection: { application_name: 'coulomb-events' },
    });
    const relay = new PostgresEventRelay(sql, bus, options);
    // Attached first: a subscription made while the channel is being listened to is announced.
    relay.detach = bus.relayTo(relay);
    try {
      const { unlisten } = await sql.listen(
        relay.channel,
        (payload) => relay.onFrame(payload),
        () => relay.onListening(),
      );
      relay.unlisten = unlisten;
    } catch (err) {
      relay.detach();
      await sql.end({ timeout: 1 });
      throw err;
    }
    return relay;
  }

  wants(accountId: string, type: EventType): boolean {
    for (const p of this.peers.values())
      if (p.all || p.types.has(type) || p.accounts.has(accountId)) return true;
    return false;
  }

  send(accountId: string, event: AccountEvent): void {
    this.enqueue({ k: 'e', a: accountId, e: event });
  }

  accountInterest(accountId: string, wanted: boolean): void {
    this.enqueue({ k: wanted ? '+' : '-', a: [accountId] });
  }

  typeInterest(all: boolean, types: EventType[]): void {
    this.enqueue({ k: 't', all, types });
  }

  /** Instances that announced an interest (tests, diagnostics). */
  get peerCount(): number {
    return this.peers.size;
  }

  /** Stops relaying: tells the others, sends what is queued, closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.detach?.();
    this.enqueue({ k: 'b' });
    this.closed = true;
    await this.flushing;
    await this.unlisten?.().catch(() => undefined);
    this.peers.clear();
    await this.sql.end({ timeout: 1 });
  }

  /** The listening connection is (again) up: what others announced may have been missed. */
  private onListening(): void {
    if (this.closed) return;
    this.peers.clear();
    this.enqueue({ k: 'h' });
    this.announce();
  }

  private announce(): void {
    const { all, types, accounts } = this.bus.interest();
    this.enqueue({ k: 't', all, types });
    for (let i = 0; i < accounts.length; i += ACCOUNTS_PER_MESSAGE)
      this.enqueue({ k: '+', a: accounts.slice(i, i + ACCOUNTS_PER_MESSAGE) });
  }

  private onFrame(payload: string): void {
    if (this.closed || payload.startsWith(`${this.instanceId}|`)) return;
    const whole = this.assembler.accept(payload);
    if (!whole) return;
    const message = decodeMessage(whole.body);
    if (!message) {
      this.log?.warn(
        { code: 'EVENT_RELAY_MALFORMED', sender: whole.sender },
        'ignored a malformed relayed message',
      );
      return;
    }
    this.onMessage(whole.sender, message);
  }

  private onMessage(sender: string, m: RelayMessage): void {
    switch (m.k) {
      case 'e':
        this.bus.receive(m.a, m.e);
        return;
      case 'h':
        this.peers.delete(sender);
        this.enqueue({ k: 'r' });
        this.announce();
        return;
      case 'r':
      case 'b':
        this.peers.delete(sender);
        return;
      case 't': {
        const p = this.peer(sender);
        p.all = m.all;
        p.types = new Set(m.types);
        return;
      }
      case '+':
        for (const a of m.a) this.peer(sender).accounts.add(a);
        return;
      case '-': {
        const p = this.peers.get(sender);
        for (const a of m.a) p?.accounts.delete(a);
        return;
      }
    }
  }

  private peer(id: string): PeerInterest {
    let p = this.peers.get(id);
    if (!p) {
      p = { all: false, types: new Set(), accounts: new Set() };
      this.peers.set(id, p);
    }
    return p;
  }

  private enqueue(message: RelayMessage): void {
    if (this.closed) return;
    const f = frames(this.instanceId, (this.messageNo += 1), encodeMessage(message));
    if (!f) {
      this.log?.warn(
        { code: 'EVENT_TOO_LARGE', type: message.k === 'e' ? message.e.type : message.k },
        'an account event too large to relay was not sent to the other instances',
      );
      return;
    }
    if (this.queue.length + f.length > MAX_QUEUED_FRAMES) {
      if (!this.dropping)
        this.log?.warn({ code: 'EVENT_RELAY_BEHIND' }, 'the database is behind; dropping relayed events');
      this.dropping = true;
      return;
    }
    this.queue.push(...f);
    this.flushing ??= this.flush();
  }

  /**
   * Sends what is queued, one statement at a time on the one connection (so in order), each
   * statement all frames queued meanwhile: one round trip per batch, however many events.
   */
  private async flush(): Promise<void> {
    // Let the current synchronous burst of publishes join this batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.sql`SELECT pg_notify(${this.channel}, f) FROM unnest(${batch}::text[]) AS f`;
        this.dropping = false;
      } catch (err) {
        this.log?.warn(
          { code: 'EVENT_RELAY_FAILED', err, frames: batch.length },
          'relaying account events failed',
        );
      }
    }
    this.flushing = undefined;
  }
}
