import { LedgerError, LedgerErrorCode } from './errors.js';
import type { AccountLeaseStore } from './store.js';

export interface AccountLeaseOptions {
  /** How long a lease lasts after it was last taken or renewed (database clock). Default 5 s. */
  ttlMs?: number;
  /**
   * How often this instance looks for leases another instance asked for (handed over once
   * unused), gives up idle ones and renews those past a third of their time. Default 50 ms.
   */
  tickMs?: number;
  /** A lease nobody asked for is given up after this long unused. Default 2 s. */
  idleMs?: number;
  /** A lease another instance asked for is handed over after this long unused. Default 20 ms. */
  graceMs?: number;
  /** How long `hold` waits for a lease held by another instance. Default 10 s (> ttlMs). */
  waitMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** What the ledger does for its leases: read a newly taken account afresh; tell unwritten changes. */
export interface LeaseHooks {
  /** Reads the accounts afresh (after this instance's own writes are durable). */
  refresh(ids: string[]): Promise<void>;
  /** The account has changes of this instance not yet durable: its lease must not go yet. */
  dirty(id: string): boolean;
  /** These leases are no longer this instance's (handed over, given up, lost or stopped). */
  released(ids: string[]): void;
}

interface Held {
  epoch: number;
  /** Local time until which the lease is surely still ours (taken at send time + ttl − margin). */
  validUntil: number;
  usedAt: number;
  wanted: boolean;
  /** Taken, its account being read afresh: not usable until this settles. */
  ready: Promise<void> | undefined;
  releasing: boolean;
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * This instance's account leases (see `AccountLeaseStore`): `hold` takes them before a debit is
 * validated in memory, `epochOf` tells the debit its fence, and a timer renews what is in use,
 * hands over what another instance asked for (once this instance's writes on it are durable and
 * it went unused for `graceMs`) and gives up what went idle.
 */
export class AccountLeases {
  private readonly held = new Map<string, Held>();
  /**
   * Leases handed over to another instance that asked, with when: this instance waits a few ticks
   * before asking again, so the one that asked gets its turn (no ping-pong, no starvation).
   */
  private readonly handedOver = new Map<string, number>();
  private readonly ttlMs: number;
  private readonly tickMs: number;
  private readonly idleMs: number;
  private readonly graceMs: number;
  private readonly waitMs: number;
  private readonly margin: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly store: AccountLeaseStore,
    private readonly hooks: LeaseHooks,
    options: AccountLeaseOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 5000;
    this.tickMs = options.tickMs ?? 50;
    this.idleMs = options.idleMs ?? 2000;
    this.graceMs = options.graceMs ?? 20;
    this.waitMs = options.waitMs ?? 10_000;
    // A lease counts as ours until a fifth of its ttl before it runs out (clock drift, delays).
    this.margin = Math.ceil(this.ttlMs / 5);
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? sleepMs;
  }

  /** How many leases this instance holds. */
  get size(): number {
    return this.held.size;
  }

  /**
   * The epoch under which a debit of `accountId` may be validated now (marking the lease used),
   * or undefined when this instance does not hold the lease (or is handing it over).
   */
  epochOf(accountId: string): number | undefined {
    const h = this.held.get(accountId);
    const now = this.now();
    if (!h || h.ready || h.releasing || h.validUntil <= now) return undefined;
    h.usedAt = now;
    return h.epoch;
  }

  /** True when this instance holds the lease (its memory of the account is authoritative). */
  holds(accountId: string): boolean {
    const h = this.held.get(accountId);
    return h !== undefined && !h.ready && !h.releasing && h.validUntil > this.now();
  }

  /**
   * Takes (or keeps) the leases of `ids`, waiting while another instance holds one (it is asked
   * to hand it over) up to `waitMs`; a lease newly taken is usable once its account was read
   * afresh. Throws LEASE_BUSY (503) when the wait runs out.
   */
  async hold(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    this.start();
    const deadline = this.now() + this.waitMs;
    let pause = 1;
    for (;;) {
      const now = this.now();
      const ask: string[] = [];
      const readies: Promise<void>[] = [];
      let blocked = false;
      for (const id of new Set(ids)) {
        const h = this.held.get(id);
        const given = this.handedOver.get(id);
        if (given !== undefined && now - given >= 3 * this.tickMs) this.handedOver.delete(id);
        if (h?.ready) readies.push(h.ready);
        else if ((h && (h.releasing || h.wanted)) || (!h && this.handedOver.has(id))) blocked = true;
        else if (h && h.validUntil > now + this.tickMs) h.usedAt = now;
        else ask.push(id);
      }
      if (readies.length > 0) {
        await Promise.all(readies);
        continue;
      }
      if (ask.length > 0) {
        const { refused } = await this.take(ask);
        if (refused.length === 0 && !blocked) continue; // the next pass finds them all held
      } else if (!blocked) return;
      if (this.now() >= deadline)
        throw new LedgerError(
          LedgerErrorCode.LEASE_BUSY,
          'another gateway instance is spending from this account; retry shortly',
          { accounts: [...new Set(ids)] },
        );
      await this.sleep(pause);
      pause = Math.min(pause * 2, 25);
    }
  }

  /** Gives every lease up (at close, after the ledger's last batch is durable). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    const all = [...this.held.entries()].filter(([, h]) => !h.releasing);
    for (const [, h] of all) h.releasing = true;
    this.held.clear();
    this.hooks.released(all.map(([id]) => id));
    await this.store
      .releaseLeases(all.map(([accountId, h]) => ({ accountId, epoch: h.epoch })))
      .catch(() => undefined); // they run out on their own (ttl)
  }

  /** One round trip: takes or renews `ids`; reads those newly taken afresh before they are usable. */
  private async take(ids: string[]): Promise<{ refused: string[] }> {
    const sentAt = this.now();
    const { granted, refused } = await this.store.acquireLeases(ids, this.ttlMs);
    // The timer may have stopped meanwhile (nothing was held): these need it.
    if (granted.length > 0) this.start();
    const fresh: [string, Held][] = [];
    for (const g of granted) {
      const h = this.held.get(g.accountId);
      const validUntil = sentAt + this.ttlMs - this.margin;
      if (h && h.epoch === g.epoch) {
        if (h.releasing) continue; // given up meanwhile: taken again on the next pass
        h.validUntil = validUntil;
        h.wanted ||= g.wanted;
        h.usedAt = this.now();
        continue;
      }
      const entry: Held = {
        epoch: g.epoch,
        validUntil,
        usedAt: this.now(),
        wanted: g.wanted,
        ready: undefined,
        releasing: false,
      };
      this.held.set(g.accountId, entry);
      fresh.push([g.accountId, entry]);
    }
    if (fresh.length > 0) {
      const ready = this.hooks.refresh(fresh.map(([id]) => id));
      for (const [, h] of fresh) h.ready = ready;
      try {
        await ready;
      } catch (err) {
        for (const [id, h] of fresh) if (this.held.get(id) === h) this.held.delete(id);
        this.hooks.released(fresh.map(([id]) => id));
        await this.store
          .releaseLeases(fresh.map(([accountId, h]) => ({ accountId, epoch: h.epoch })))
          .catch(() => undefined);
        throw err;
      } finally {
        for (const [, h] of fresh) h.ready = undefined;
      }
    }
    return { refused };
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.ticking ??= this.tick().finally(() => (this.ticking = undefined));
    }, this.tickMs);
    this.timer.unref();
  }

  /**
   * Learns which leases another instance asked for; hands those over (once unused for `graceMs`)
   * and gives up what went idle, never with changes not yet durable; renews the rest once past a
   * third of their time. A lease the renewal finds lost (it ran out and was taken) is dropped:
   * debits of it are refused from then on.
   */
  private async tick(): Promise<void> {
    for (const [id, at] of this.handedOver)
      if (this.now() - at >= 3 * this.tickMs) this.handedOver.delete(id);
    try {
      if ([...this.held.values()].some((h) => !h.wanted && !h.releasing && !h.ready))
        for (const id of await this.store.wantedLeases()) {
          const h = this.held.get(id);
          if (h) h.wanted = true;
        }
      const now = this.now();
      const release: [string, Held][] = [];
      const renew: string[] = [];
      for (const [id, h] of this.held) {
        if (h.ready || h.releasing) continue;
        const unused = now - h.usedAt;
        if (unused >= (h.wanted ? this.graceMs : this.idleMs) && !this.hooks.dirty(id)) release.push([id, h]);
        else if (h.validUntil - now < this.ttlMs / 2) renew.push(id);
      }
      if (release.length > 0) {
        for (const [, h] of release) h.releasing = true;
        try {
          await this.store.releaseLeases(release.map(([accountId, h]) => ({ accountId, epoch: h.epoch })));
        } finally {
          const at = this.now();
          const gone: string[] = [];
          for (const [id, h] of release) {
            if (this.held.get(id) === h) {
              this.held.delete(id);
              gone.push(id);
            }
            if (h.wanted) this.handedOver.set(id, at);
          }
          this.hooks.released(gone);
        }
      }
      if (renew.length > 0) {
        const sentAt = this.now();
        const { granted } = await this.store.acquireLeases(renew, this.ttlMs);
        const got = new Map(granted.map((g) => [g.accountId, g]));
        for (const id of renew) {
          const h = this.held.get(id);
          if (!h || h.ready || h.releasing) continue;
          const g = got.get(id);
          if (g && g.epoch === h.epoch) {
            h.validUntil = sentAt + this.ttlMs - this.margin;
            h.wanted ||= g.wanted;
          } else {
            this.held.delete(id);
            this.hooks.released([id]);
          }
        }
      }
    } catch {
      // The database is unreachable: the leases run out locally (validUntil) and debits are
      // refused until it answers again.
    }
    if (this.held.size === 0 && this.handedOver.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
