import type { Duty } from './duties.js';
import type { LeaderElection } from './leader.js';

/** Set on a request one instance passes to the leader (its id): the receiver never passes it on again. */
export const FORWARDED_BY = 'coulomb-forwarded-by';

/** Where the elected leader serves (a shared store): what followers forward to. */
export interface LeaderDirectory {
  locate(): Promise<{ url: string; instanceId: string } | undefined>;
  /** Forgets a cached address (a forward to it failed). */
  forget(): void;
}

/** Secrets every instance of a deployment must share, created once by the first one. */
export interface SharedSecrets {
  /** The secret `name`; `initial` gives its value if there is none yet. */
  secret(name: string, initial: () => string): Promise<string>;
}

/** Who serves a leader-owned request now: this instance, this one once loaded, or the leader elsewhere. */
export type Placement = 'here' | 'starting' | 'elsewhere';

/**
 * The services whose live state one process holds in memory and acts on (streams and their
 * scheduler, escrows, tasks, auctions, energy orders, device commerce). With the embedded store
 * there is one process and they are always here. On a shared store they belong to the elected
 * leader: it loads their open items from the store when elected (a duty, first of all), serves
 * their requests, and every follower forwards those requests to it (`LeaderDirectory`). A leader
 * that is deposed does not keep that memory: `onDeposed` ends the process (the gateway exits and
 * its supervisor restarts it as a follower), as leader-elected controllers do, so two processes
 * never act on one item from two memories for longer than the election's own overlap.
 */
export class LeaderOwnedServices {
  private loaded = false;
  private serving = false;
  /** Deposed after serving, and still running (an `onDeposed` that does not end the process). */
  private retired = false;

  constructor(
    readonly instanceId: string,
    private readonly election: LeaderElection,
    /** Undefined: the embedded store, one process, always here. */
    readonly directory: LeaderDirectory | undefined,
    private readonly onDeposed: (reason: string) => void,
  ) {}

  get shared(): boolean {
    return this.directory !== undefined;
  }

  /** Whether this instance is the elected leader now (always, with the embedded store). */
  get leading(): boolean {
    return this.election.isLeader;
  }

  where(): Placement {
    if (!this.directory || this.serving) return 'here';
    return this.election.isLeader ? 'starting' : 'elsewhere';
  }

  /**
   * Where a leader-owned request goes now: here (undefined), or the leader's address, or why it
   * cannot go anywhere (`unavailable`: an election or a load under way; the client retries).
   * `forwarded`: the request already came from another instance, and is never passed on again.
   */
  async target(forwarded: boolean): Promise<undefined | { url: string } | { unavailable: string }> {
    const where = this.where();
    if (where === 'here') return undefined;
    if (where === 'starting') return { unavailable: 'this instance was just elected and is loading; retry' };
    if (forwarded) return { unavailable: 'the leadership moved while the request was passed on; retry' };
    const leader = await this.directory?.locate().catch(() => undefined);
    if (!leader || leader.instanceId === this.instanceId)
      return { unavailable: 'no leader is elected right now; retry' };
    return { url: leader.url };
  }

  /** The duty that loads the services on election (once per process) and gives them up when deposed. */
  duty(load: () => Promise<void>): Duty {
    return {
      name: 'leader-owned services (streams, escrows, tasks, auctions, energy, device commerce)',
      start: async () => {
        if (this.retired)
          throw new Error('this process was deposed after leading; it must restart before it leads again');
        if (!this.loaded) {
          try {
            await load();
          } catch (err) {
            // Half loaded: this memory must not serve, now or after a later election.
            if (this.directory) this.onDeposed('loading the leader-owned services failed');
            throw err;
          }
          this.loaded = true;
        }
        this.serving = true;
      },
      stop: (reason) => {
        const was = this.serving;
        this.serving = false;
        if (this.directory && was && reason !== 'closed') {
          this.retired = true;
          this.onDeposed(reason);
        }
      },
    };
  }
}
