import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../domain/logger.js';

/** The ledger code of a metered request's reservation (reserved before, posted after the upstream answered). */
export const USAGE = 'l402_usage';

/** A pending usage reservation as the shared store has it. */
export interface PendingUsage {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  memo?: string;
  createdAt: number;
}

/** What the sweep reads of a shared store. */
export interface UsageOrphanSource {
  /** Pending `l402_usage` transfers created before `createdBefore` (unix ms), oldest first, at most `limit`. */
  pendingUsage(createdBefore: number, limit: number): Promise<PendingUsage[]>;
  /** The ids of the gateway instances connected to the store now. */
  liveInstances(): Promise<Set<string>>;
}

const TAG = / \(instance ([0-9a-f-]{36})\)$/;

/**
 * The memo of a metered reservation: the request's path and, on a store several instances share,
 * the instance serving the request, so that a reservation left by an instance that died can be
 * told from one still in flight (`UsageOrphans`).
 */
export function usageMemo(path: string, instanceId: string | undefined): string {
  return instanceId === undefined ? path : `${path} (instance ${instanceId})`;
}

/**
 * The leader's sweep of metered reservations whose instance is gone (a shared store). A metered
 * request reserves its worst case on the credential and posts what was used when the upstream has
 * answered; an instance killed meanwhile leaves the reservation pending, and the credential's
 * credit reserved, for good. (A single process voids its own at restart.) Streams through the
 * proxy are never cut by a timeout, so age alone proves nothing: a reservation is voided when the
 * instance named in its memo has not been connected to the store in two sweeps in a row (an
 * instance reconnecting for a moment is not taken for dead), or when its memo names none (made
 * before the store was shared: an imported store, whose process was stopped). Voided under the
 * credential's lease, as every pending transfer is; one that fails is tried again next sweep.
 */
export class UsageOrphans {
  private missing = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ledger: Ledger,
    private readonly source: UsageOrphanSource,
    private readonly log: Logger,
    private readonly options: { everyMs?: number; graceMs?: number; now?: () => number } = {},
  ) {}

  start(): void {
    const every = this.options.everyMs ?? 30_000;
    const run = (): void =>
      void this.sweep().catch((err: unknown) =>
        this.log.warn({ err }, 'sweeping orphaned usage reservations failed'),
      );
    run();
    this.timer = setInterval(run, every);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.missing.clear();
  }

  /** One pass; returns how many reservations it voided. */
  async sweep(): Promise<number> {
    const now = (this.options.now ?? Date.now)();
    const found = await this.source.pendingUsage(now - (this.options.graceMs ?? 60_000), 500);
    const live = await this.source.liveInstances();
    const gone = new Set<string>();
    const orphans: PendingUsage[] = [];
    for (const t of found) {
      const instance = TAG.exec(t.memo ?? '')?.[1];
      if (instance === undefined) orphans.push(t);
      else if (!live.has(instance)) {
        gone.add(instance);
        if (this.missing.has(instance)) orphans.push(t);
      }
    }
    this.missing = gone;
    let voided = 0;
    for (const t of orphans) {
      try {
        await this.ledger.ensure({ spend: [t.debitAccountId], accounts: [t.creditAccountId] });
        if (!this.ledger.pendingTransfers().some((p) => p.id === t.id)) continue; // settled meanwhile
        await this.ledger.void(t.id, 'interrupted: the instance serving the request is gone').durable;
        voided += 1;
      } catch (err) {
        this.log.warn(
          { err, transferId: t.id },
          'voiding an orphaned usage reservation failed; retrying later',
        );
      }
    }
    if (voided > 0) this.log.info({ voided }, 'voided usage reservations left by instances that are gone');
    return voided;
  }
}
