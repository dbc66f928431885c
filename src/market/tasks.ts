import { Type } from '@sinclair/typebox';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { BoundedCache } from '../domain/lru.js';
import { randomUUID } from 'node:crypto';
import type { Msat } from '../domain/msat.js';
import type { EscrowService } from '../escrow/service.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { IndexedItems, RecordIndex } from '../ledger/record-index.js';
import type { Logger } from '../domain/logger.js';
import { MsatField, recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import { MarketError, MarketErrorCode } from './errors.js';
import { capabilities, type ServiceRegistry } from './registry.js';
import type { Reputation, Task, TaskState } from './types.js';

export interface PublishTaskInput {
  title: string;
  description?: string;
  capabilities?: string[];
  rewardMsat: Msat;
  /** Seconds from now until the result is due. */
  deadlineSeconds: number;
  reviewSeconds?: number;
  /**
   * The agent the task goes to at publication (an auction's winner): the task starts claimed by it
   * and its escrow names it payee, in the batch that locks the reward (no moment where it is open).
   */
  agentAccountId?: string;
  /** A retry with the same key gets the first task; the same key for another request is a 409. */
  idempotencyKey?: string;
}

export type TaskEvent = { type: 'task'; task: Task };

/** Escrow stays locked this long past the review window, so disputes have time to be resolved. */
const DISPUTE_WINDOW_S = 7 * 24 * 3600;
const FINAL_TASK: ReadonlySet<TaskState> = new Set(['completed', 'resolved', 'expired']);
/** Index entries a filtered history listing reads at most per page before it returns a cursor. */
const SCAN_PER_PAGE = 2000;

const L = <T extends string>(v: T) => Type.Literal(v);
const taskCodec: RecordCodec<Task> = recordCodec(
  'task',
  Type.Object({
    id: Type.String(),
    publisherAccountId: Type.String(),
    title: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    rewardMsat: MsatField,
    deadline: Type.Number(),
    reviewSeconds: Type.Number(),
    escrowId: Type.String(),
    state: Type.Union([
      L('open'),
      L('claimed'),
      L('submitted'),
      L('completed'),
      L('disputed'),
      L('resolved'),
      L('expired'),
    ]),
    agentAccountId: Type.Optional(Type.String()),
    result: Type.Optional(Type.String()),
    disputeReason: Type.Optional(Type.String()),
    resolvedFor: Type.Optional(Type.Union([L('agent'), L('publisher')])),
    createdAt: Type.Number(),
    claimedAt: Type.Optional(Type.Number()),
    submittedAt: Type.Optional(Type.Number()),
    closedAt: Type.Optional(Type.Number()),
  }),
);
const taskIndex = new RecordIndex<Task>(
  'task',
  taskCodec,
  (t) => [t.publisherAccountId, t.agentAccountId],
  (t) => FINAL_TASK.has(t.state),
);
const repKey = (id: string): string => `${PREFIXES.reputation.prefix}${id}`;
const reputationCodec: RecordCodec<Reputation> = recordCodec(
  'reputation',
  Type.Object({
    accountId: Type.String(),
    completed: Type.Number(),
    disputed: Type.Number(),
    lost: Type.Number(),
    late: Type.Number(),
  }),
);
/** Reputations kept in memory: the recently used ones (the rest are read from disk when asked). */
const CACHED_REPUTATIONS = 10_000;

/**
 * The task market: a publisher locks a reward in escrow, an agent with the right capabilities
 * claims the task and submits a result, the publisher accepts (release) or rejects (dispute for
 * the operator); unclaimed or late tasks refund. Outcomes update both parties' reputation.
 */
export class TaskMarket {
  /** Open tasks (what the sweep works on and open listings read) and a cache of closed ones. */
  private readonly tasks: IndexedItems<Task>;
  private readonly reputations: BoundedCache<string, Reputation>;
  /** Reputation reads in progress, so concurrent ones of an account read it once. */
  private readonly reading = new Map<string, Promise<Reputation>>();
  private readonly queue = new KeyedQueue();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ledger: Ledger,
    private readonly escrow: EscrowService,
    private readonly registry: ServiceRegistry,
    private readonly publish: (accountId: string, event: TaskEvent) => void,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.tasks = new IndexedItems(taskIndex, ledger);
    this.reputations = new BoundedCache(CACHED_REPUTATIONS, now);
  }

  async start(): Promise<void> {
    await this.load();
    this.startDuties();
  }

  /** The open tasks: what every instance needs to serve requests. */
  async load(): Promise<void> {
    await this.tasks.load();
  }

  /** The leader's part: the deadline sweep. */
  startDuties(): void {
    this.stopDuties();
    this.timer = setInterval(
      () => void this.sweep().catch((err: unknown) => this.log.error({ err }, 'task sweep failed')),
      1000,
    );
    this.timer.unref();
  }

  stop(): void {
    this.stopDuties();
  }

  stopDuties(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async publishTask(publisherAccountId: string, input: PublishTaskInput): Promise<Task> {
    const { idempotencyKey, ...request } = input;
    return this.ledger.idempotent(
      { accountId: publisherAccountId, key: idempotencyKey, operation: 'task', request },
      (records) => this.publishOnce(publisherAccountId, request, records),
      (id) => this.get(id),
    );
  }

  private async publishOnce(
    publisherAccountId: string,
    input: PublishTaskInput,
    idem: (id: string) => SideRecords,
  ): Promise<Task> {
    const title = input.title.trim();
    if (title.length === 0 || title.length > 200)
      throw new MarketError(MarketErrorCode.INVALID_ARGUMENT, 'title must be 1 to 200 characters');
    if (!Number.isInteger(input.deadlineSeconds) || input.deadlineSeconds < 1)
      throw new MarketError(MarketErrorCode.INVALID_ARGUMENT, 'deadlineSeconds must be a positive integer');
    const reviewSeconds = input.reviewSeconds ?? 24 * 3600;
    if (!Number.isInteger(reviewSeconds) || reviewSeconds < 1)
      throw new MarketError(MarketErrorCode.INVALID_ARGUMENT, 'reviewSeconds must be a positive integer');
    const caps = capabilities(input.capabilities ?? []);
    const agent = input.agentAccountId;
    if (agent !== undefined) await this.assertCanTake({ publisherAccountId, capabilities: caps }, agent);
    // The reward is locked first (policy and funds checked there); the task and its idempotency
    // key are written in the batch that locks it, so a crash cannot leave a lock without its task
    // (a retry would lock the reward again).
    const now = this.now();
    const task: Task = {
      id: randomUUID(),
      publisherAccountId,
      title,
      description: input.description ?? '',
      capabilities: caps,
      rewardMsat: input.rewardMsat,
      deadline: now + input.deadlineSeconds * 1000,
      reviewSeconds,
      escrowId: '',
      state: agent !== undefined ? 'claimed' : 'open',
      ...(agent !== undefined ? { agentAccountId: agent, claimedAt: now } : {}),
      createdAt: now,
    };
    await this.escrow.create(
      publisherAccountId,
      {
        amountMsat: input.rewardMsat,
        description: `task: ${title}`.slice(0, 600),
        condition: { type: 'approval' },
        funding: 'account',
        timeoutSeconds: input.deadlineSeconds + reviewSeconds + DISPUTE_WINDOW_S,
        ...(agent !== undefined ? { payeeAccountId: agent } : {}),
      },
      (escrowId) => {
        task.escrowId = escrowId;
        return [...taskIndex.records(task), ...idem(task.id)];
      },
    );
    this.tasks.remember(task);
    this.announce(task);
    return { ...task };
  }

  claim(taskId: string, agentAccountId: string): Promise<Task> {
    return this.run(taskId, async () => {
      const t = await this.must(taskId);
      this.expect(t, 'open', 'claim');
      if (this.now() >= t.deadline)
        throw new MarketError(MarketErrorCode.DEADLINE_PASSED, 'the task deadline has passed');
      await this.assertCanTake(t, agentAccountId);
      await this.escrow.assignPayee(t.escrowId, agentAccountId);
      t.state = 'claimed';
      t.agentAccountId = agentAccountId;
      t.claimedAt = this.now();
      await this.save(t);
      return { ...t };
    });
  }

  submit(taskId: string, agentAccountId: string, result: string): Promise<Task> {
    return this.run(taskId, async () => {
      const t = await this.must(taskId);
      if (t.agentAccountId !== agentAccountId)
        throw new MarketError(MarketErrorCode.FORBIDDEN, 'only the agent that claimed the task submits');
      this.expect(t, 'claimed', 'submit a result for');
      if (this.now() >= t.deadline)
        throw new MarketError(MarketErrorCode.DEADLINE_PASSED, 'the task deadline has passed');
      if (result.length === 0 || result.length > 16_384)
        throw new MarketError(MarketErrorCode.INVALID_ARGUMENT, 'result must be 1 to 16384 characters');
      t.state = 'submitted';
      t.result = result;
      t.submittedAt = this.now();
      await this.save(t);
      return { ...t };
    });
  }

  accept(taskId: string, publisherAccountId: string | 'operator'): Promise<Task> {
    return this.run(taskId, async () => {
      const t = await this.must(taskId);
      this.assertPublisher(t, publisherAccountId);
      this.expect(t, 'submitted', 'accept');
      return this.complete(t, 'accepted');
    });
  }

  reject(taskId: string, publisherAccountId: string, reason: string): Promise<Task> {
    return this.run(taskId, async () => {
      const t = await this.must(taskId);
      this.assertPublisher(t, publisherAccountId);
      this.expect(t, 'submitted', 'reject');
      t.state = 'disputed';
      t.disputeReason = reason.slice(0, 2000);
      await this.save(
        t,
        await Promise.all([
          this.bump(t.publisherAccountId, 'disputed'),
          this.bump(t.agentAccountId!, 'disputed'),
        ]),
      );
      return { ...t };
    });
  }

  /** The operator decides a dispute: the reward goes to the agent or back to the publisher. */
  resolve(taskId: string, winner: 'agent' | 'publisher'): Promise<Task> {
    return this.run(taskId, async () => {
      const t = await this.must(taskId);
      this.expect(t, 'disputed', 'resolve');
      if (winner === 'agent') await this.escrow.releaseNow(t.escrowId, 'dispute_resolved_for_agent');
      else await this.escrow.refundNow(t.escrowId, 'dispute_resolved_for_publisher');
      t.state = 'resolved';
      t.resolvedFor = winner;
      t.closedAt = this.now();
      const loser = winner === 'agent' ? t.publisherAccountId : t.agentAccountId!;
      await this.save(t, [await this.bump(loser, 'lost')]);
      return { ...t };
    });
  }

  async get(taskId: string): Promise<Task> {
    return { ...(await this.must(taskId)) };
  }

  /**
   * Tasks, newest first, a page at a time (`next` is the cursor of the following page, to pass as
   * `before`); `capability` keeps those an agent with these capabilities may claim. Tasks in an
   * open state come from memory; history is read from the indexes on disk.
   */
  async list(
    filter: { state?: TaskState; capability?: string[]; accountId?: string } = {},
    page: { limit?: number; before?: string } = {},
  ): Promise<{ tasks: Task[]; next?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const has = filter.capability ? new Set(capabilities(filter.capability)) : undefined;
    const matches = (t: Task): boolean =>
      (filter.state === undefined || t.state === filter.state) &&
      (filter.accountId === undefined ||
        t.publisherAccountId === filter.accountId ||
        t.agentAccountId === filter.accountId) &&
      (has === undefined || t.capabilities.every((c) => has.has(c)));
    if (filter.state !== undefined && !FINAL_TASK.has(filter.state)) {
      const found = [...this.tasks.values()]
        .filter((t) => matches(t) && (page.before === undefined || taskIndex.cursor(t) < page.before))
        .sort((a, b) => (taskIndex.cursor(a) < taskIndex.cursor(b) ? 1 : -1));
      const shown = found.slice(0, limit);
      const last = shown[shown.length - 1];
      return {
        tasks: shown.map((t) => ({ ...t })),
        ...(found.length > limit && last ? { next: taskIndex.cursor(last) } : {}),
      };
    }
    const tasks: Task[] = [];
    let before = page.before;
    let scanned = 0;
    for (;;) {
      const chunk = await taskIndex.page(this.ledger, filter.accountId, 200, before);
      for (const [i, { id, cursor }] of chunk.entries.entries()) {
        scanned += 1;
        before = cursor;
        const t = await this.tasks.peek(id);
        if (t && matches(t)) tasks.push({ ...t });
        const more = i < chunk.entries.length - 1 || chunk.next !== undefined;
        // A full page, or enough reading for one request: the listing goes on after this entry.
        if ((tasks.length === limit || scanned >= SCAN_PER_PAGE) && more) return { tasks, next: cursor };
      }
      if (!chunk.next) return { tasks };
    }
  }

  async reputation(accountId: string): Promise<Reputation> {
    return { ...(await this.resident(accountId)) };
  }

  /** The account's reputation in memory: from the cache, else read from disk (then cached). */
  private resident(accountId: string): Promise<Reputation> {
    const cached = this.reputations.get(accountId);
    if (cached) return Promise.resolve(cached);
    let reading = this.reading.get(accountId);
    if (!reading) {
      reading = this.ledger
        .getRecord(repKey(accountId))
        .then((raw) => {
          // One read at a time per account; what a bump changed meanwhile is in the cache.
          const rep =
            this.reputations.get(accountId) ??
            (raw !== undefined
              ? reputationCodec.decode(raw)
              : { accountId, completed: 0, disputed: 0, lost: 0, late: 0 });
          this.reputations.set(accountId, rep);
          return rep;
        })
        .finally(() => this.reading.delete(accountId));
      this.reading.set(accountId, reading);
    }
    return reading;
  }

  /** Unclaimed or late tasks refund; submitted ones the publisher left unreviewed are accepted. */
  async sweep(): Promise<void> {
    const now = this.now();
    for (const t of this.tasks.values()) {
      const late = (t.state === 'open' || t.state === 'claimed') && now >= t.deadline;
      const unreviewed = t.state === 'submitted' && now >= (t.submittedAt ?? 0) + t.reviewSeconds * 1000;
      if (!late && !unreviewed) continue;
      await this.run(t.id, async () => {
        if (t.state === 'submitted') return this.complete(t, 'review_window_lapsed');
        if (t.state !== 'open' && t.state !== 'claimed') return t;
        await this.escrow.refundNow(t.escrowId, t.state === 'open' ? 'task_unclaimed' : 'task_late');
        const records = t.state === 'claimed' ? [await this.bump(t.agentAccountId!, 'late')] : [];
        t.state = 'expired';
        t.closedAt = this.now();
        await this.save(t, records);
        return t;
      }).catch((err: unknown) => this.log.warn({ err, taskId: t.id }, 'closing a task failed; retrying'));
    }
  }

  private async complete(t: Task, reason: string): Promise<Task> {
    await this.escrow.releaseNow(t.escrowId, reason);
    t.state = 'completed';
    t.closedAt = this.now();
    await this.save(
      t,
      await Promise.all([
        this.bump(t.publisherAccountId, 'completed'),
        this.bump(t.agentAccountId!, 'completed'),
      ]),
    );
    return { ...t };
  }

  /** Counts an outcome in the account's reputation; returns its record for the task's batch. */
  private async bump(
    accountId: string,
    field: 'completed' | 'disputed' | 'lost' | 'late',
  ): Promise<SideRecords[number]> {
    const rep = await this.resident(accountId);
    rep[field] += 1; // on the resident copy, synchronously: concurrent bumps all count
    return { key: repKey(accountId), value: reputationCodec.encode(rep) };
  }

  private async save(t: Task, extra: SideRecords = []): Promise<void> {
    this.tasks.remember(t);
    await this.ledger.putRecords([...taskIndex.records(t), ...extra]);
    this.announce(t);
  }

  private announce(t: Task): void {
    const view = { ...t };
    this.publish(t.publisherAccountId, { type: 'task', task: view });
    if (t.agentAccountId) this.publish(t.agentAccountId, { type: 'task', task: view });
  }

  private run<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(id, fn);
  }

  /** The task, from memory or (closed ones) from its record. */
  private async must(id: string): Promise<Task> {
    const t = await this.tasks.find(id);
    if (!t) throw new MarketError(MarketErrorCode.TASK_NOT_FOUND, `no task ${id}`);
    return t;
  }

  /** How many tasks are in memory: every open one, and a bounded cache of closed ones. */
  stats(): { open: number; closedInMemory: number } {
    return this.tasks.stats();
  }

  /** The rule of who may take a task (claim it, or get it at publication): not its publisher, and an
   * existing account that advertises every capability the task needs. */
  private async assertCanTake(
    t: Pick<Task, 'publisherAccountId' | 'capabilities'>,
    agentAccountId: string,
  ): Promise<void> {
    if (agentAccountId === t.publisherAccountId)
      throw new MarketError(MarketErrorCode.FORBIDDEN, 'a publisher cannot claim its own task');
    await this.ledger.requireAccount(agentAccountId);
    const has = this.registry.capabilitiesOf(agentAccountId);
    const missing = t.capabilities.filter((c) => !has.has(c));
    if (missing.length > 0)
      throw new MarketError(
        MarketErrorCode.MISSING_CAPABILITY,
        `advertise these capabilities in the service registry first: ${missing.join(', ')}`,
        { missing },
      );
  }

  private expect(t: Task, state: TaskState, action: string): void {
    if (t.state !== state)
      throw new MarketError(MarketErrorCode.INVALID_STATE, `cannot ${action} a task that is ${t.state}`, {
        state: t.state,
      });
  }

  private assertPublisher(t: Task, who: string): void {
    if (who !== 'operator' && who !== t.publisherAccountId)
      throw new MarketError(MarketErrorCode.FORBIDDEN, 'only the publisher reviews the result');
  }
}
