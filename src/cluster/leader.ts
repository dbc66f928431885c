/**
 * Which gateway instance runs the singleton duties (the LND invoice subscription and crediting,
 * the stream scheduler, sweeps, reconciliation, device event replay...). With the embedded
 * LevelDB store there is one instance and it always leads (`AlwaysLeader`); with PostgreSQL the
 * instances elect one through the database (src/storage/postgres/advisory-lock-leader.ts). Every
 * instance serves requests whether it leads or not.
 */
export interface LeadershipListener {
  /** This instance leads from now: start the singleton duties. */
  elected(): void;
  /** It no longer leads: stop them at once (another instance may be elected any moment). */
  deposed(reason: string): void;
}

export interface LeaderElection {
  readonly isLeader: boolean;
  /** Starts campaigning; `listener` hears every change from now on. */
  start(listener: LeadershipListener): void;
  /**
   * Gives up the leadership for now (`deposed` is heard) and campaigns again later: for a leader
   * whose duties failed to start, so that another instance may do better.
   */
  resign(reason: string): void;
  /** Stops campaigning and releases the leadership (`deposed` is heard if it led). */
  close(): Promise<void>;
  /**
   * Where this instance serves (a shared store): published while it leads, so that followers
   * forward what the leader owns to it. Absent for the embedded store.
   */
  advertise?(instanceId: string, url: string): void;
}

/** The single instance of an embedded store: elected on start, deposed on close. */
export class AlwaysLeader implements LeaderElection {
  private listener: LeadershipListener | undefined;
  private leading = false;

  get isLeader(): boolean {
    return this.leading;
  }

  start(listener: LeadershipListener): void {
    this.listener = listener;
    this.leading = true;
    listener.elected();
  }

  /** There is no other instance to take over: the one instance keeps leading. */
  resign(): void {}

  async close(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.listener?.deposed('closed');
  }
}
