import type { Logger } from 'pino';
import type { LeaderElection } from './leader.js';

/** A singleton duty: runs on the leader only, started when it is elected and stopped when deposed. */
export interface Duty {
  name: string;
  /** Starts the duty, resuming from what is persisted (cursors, open items in the store). */
  start(): Promise<void> | void;
  /** `reason` is 'closed' when the gateway closes, else why the leadership was lost. */
  stop(reason: string): Promise<void> | void;
}

/**
 * Starts the duties (in order) when the election says this instance leads and stops them (in
 * reverse order) when it no longer does. Changes are applied one after another: a stop never
 * overlaps a start, and a start that finds the leadership gone meanwhile starts nothing more.
 * A duty that fails to start stops the ones started and resigns the leadership, so another
 * instance (or this one, at its next campaign) tries again.
 */
export class DutyRunner {
  private readonly running: Duty[] = [];
  private readonly duties: Duty[];
  private chain: Promise<void> = Promise.resolve();
  /** Set by `start` until its first transition is applied: that one's failure is the caller's. */
  private first: Promise<void> | undefined;

  constructor(
    private readonly election: LeaderElection,
    duties: readonly Duty[],
    private readonly log: Logger,
  ) {
    this.duties = [...duties];
  }

  /** One more duty, after the others: started at once if this instance leads. */
  async add(duty: Duty): Promise<void> {
    this.duties.push(duty);
    if (this.election.isLeader) await this.apply(() => this.startAll());
  }

  /** The duties running now (for status and tests). */
  get active(): string[] {
    return this.running.map((d) => d.name);
  }

  /**
   * Starts campaigning. Resolves once the duties are started if this instance was elected at
   * once (the embedded store: a duty failing to start then fails the gateway's start, as before),
   * else at once (the duties start whenever it is elected).
   */
  async start(): Promise<void> {
    let first = true;
    this.election.start({
      elected: () => {
        const applied = this.apply(() => this.startAll());
        if (first) this.first = applied;
        else void applied.catch(() => undefined);
      },
      deposed: (reason) => void this.apply(() => this.stopAll(reason)).catch(() => undefined),
    });
    first = false;
    const initial = this.first;
    this.first = undefined;
    await initial;
  }

  /** Stops the duties, then releases the leadership. */
  async close(): Promise<void> {
    await this.apply(() => this.stopAll('closed')).catch(() => undefined);
    await this.election.close();
    await this.chain.catch(() => undefined);
  }

  private apply(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async startAll(): Promise<void> {
    for (const duty of this.duties) {
      if (!this.election.isLeader) return;
      if (this.running.includes(duty)) continue;
      try {
        await duty.start();
      } catch (err) {
        this.log.error(
          { err, duty: duty.name },
          'a singleton duty failed to start; resigning the leadership',
        );
        await this.stopAll(`duty ${duty.name} failed to start`);
        this.election.resign(`duty ${duty.name} failed to start`);
        throw err;
      }
      this.running.push(duty);
    }
    this.log.info({ duties: this.active }, 'leading: singleton duties started');
  }

  private async stopAll(reason: string): Promise<void> {
    if (this.running.length === 0) return;
    while (this.running.length > 0) {
      const duty = this.running.pop()!;
      try {
        await duty.stop(reason);
      } catch (err) {
        this.log.error({ err, duty: duty.name }, 'a singleton duty failed to stop');
      }
    }
    if (reason === 'closed') this.log.info('closing: singleton duties stopped');
    else this.log.warn({ reason }, 'not leading: singleton duties stopped');
  }
}
