import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { AppError } from '../domain/errors.js';
import { KeyedQueue } from '../domain/keyed-queue.js';
import type { Logger } from '../domain/logger.js';
import type { Msat } from '../domain/msat.js';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { IndexedItems, RecordIndex } from '../ledger/record-index.js';
import { Literals, MsatField, recordCodec } from '../records/codec.js';
import { MarketError, MarketErrorCode } from './errors.js';
import { capabilities, type ServiceRegistry } from './registry.js';
import type { TaskMarket } from './tasks.js';
import type { Reputation } from './types.js';

/**
 * Reverse auctions for tasks: a buyer opens a task for bids until a deadline; providers with the
 * task's capabilities bid a price (at most the buyer's ceiling) and a promised time (at most the
 * buyer's); the buyer picks, or at the deadline the best score wins automatically. The award
 * publishes the task with the winning bid as its reward (escrowed from the buyer's account, the
 * task market's own escrow), already claimed by the winner (one batch: no other agent can take it).
 *
 * Score (lower wins; ties go to the earlier bid), in parts per million so it is exact:
 *   price = bid / ceiling, time = promised / maxPromised,
 *   risk  = min(1, (disputed + lost + late) / (completed + disputed + late + 1)),
 *   score = wPrice × price + wTime × time + wReputation × risk   (default weights 50 / 30 / 20).
 * A provider with no history has risk 0: reputation only ever counts against bad outcomes.
 */
export interface AuctionWeights {
  price: number;
  time: number;
  reputation: number;
}

export interface AuctionBid {
  accountId: string;
  priceMsat: Msat;
  promisedSeconds: number;
  at: number;
}

export type AuctionState = 'open' | 'awarding' | 'awarded' | 'expired' | 'failed';

export interface Auction {
  id: string;
  publisherAccountId: string;
  title: string;
  description: string;
  capabilities: string[];
  maxRewardMsat: Msat;
  maxPromisedSeconds: number;
  reviewSeconds: number;
  /** Bids are taken until this time (ms). */
  bidDeadline: number;
  selection: 'auto' | 'manual';
  weights: AuctionWeights;
  bids: AuctionBid[];
  state: AuctionState;
  winnerAccountId?: string;
  taskId?: string;
  failCode?: string;
  createdAt: number;
  closedAt?: number;
}

export interface OpenAuctionInput {
  title: string;
  description?: string;
  capabilities?: string[];
  maxRewardMsat: Msat;
  /** How long bids are taken. */
  bidSeconds: number;
  /** The longest a provider may promise (and the winner's task deadline is its promise). */
  maxPromisedSeconds: number;
  reviewSeconds?: number;
  selection?: 'auto' | 'manual';
  weights?: AuctionWeights;
}

/**
 * Who acts on an auction: an account (by its id), the operator, or the gateway's own sweep. A
 * tagged value, not a string: no account id (`sweep`, `operator`...) can stand for another actor.
 */
export type AuctionActor = { kind: 'account'; id: string } | { kind: 'operator' } | { kind: 'sweep' };
/** Who reads an auction. */
export type AuctionViewer = Exclude<AuctionActor, { kind: 'sweep' }>;

/**
 * What a viewer sees of an auction: the publisher and the operator all of it; another account only
 * its own bid, the winner and the task only if it won, never the failure code (the buyer's). An
 * account that did not bid sees an open auction (anyone can list those) with no bids, and nothing
 * of a closed one (undefined: not found).
 */
export function auctionSeenBy(a: Auction, viewer: AuctionViewer): Auction | undefined {
  if (viewer.kind === 'operator' || viewer.id === a.publisherAccountId) return a;
  const bids = a.bids.filter((b) => b.accountId === viewer.id);
  if (bids.length === 0 && a.state !== 'open') return undefined;
  const seen: Auction = { ...a, bids };
  delete seen.failCode;
  if (a.winnerAccountId !== viewer.id) {
    delete seen.winnerAccountId;
    delete seen.taskId;
  }
  return seen;
}

export interface ScoredBid extends AuctionBid {
  score: number;
  reputation: Reputation;
}

const DEFAULT_WEIGHTS: AuctionWeights = { price: 50, time: 30, reputation: 20 };
const MAX_BIDS = 200;
const DEFAULT_MAX_OPEN_PER_ACCOUNT = 100;
/** A manual auction the buyer never decides on closes this long after its bid deadline. */
const MANUAL_GRACE_MS = 24 * 3600_000;

const codec = recordCodec(
  'auction',
  Type.Object({
    id: Type.String(),
    publisherAccountId: Type.String(),
    title: Type.String(),
    description: Type.String(),
    capabilities: Type.Array(Type.String()),
    maxRewardMsat: MsatField,
    maxPromisedSeconds: Type.Integer(),
    reviewSeconds: Type.Integer(),
    bidDeadline: Type.Integer(),
    selection: Literals('auto', 'manual'),
    weights: Type.Object({ price: Type.Integer(), time: Type.Integer(), reputation: Type.Integer() }),
    bids: Type.Array(
      Type.Object({
        accountId: Type.String(),
        priceMsat: MsatField,
        promisedSeconds: Type.Integer(),
        at: Type.Integer(),
      }),
    ),
    state: Literals('open', 'awarding', 'awarded', 'expired', 'failed'),
    winnerAccountId: Type.Optional(Type.String()),
    taskId: Type.Optional(Type.String()),
    failCode: Type.Optional(Type.String()),
    createdAt: Type.Integer(),
    closedAt: Type.Optional(Type.Integer()),
  }),
);
const FINAL = new Set<AuctionState>(['awarded', 'expired', 'failed']);
const auctionIndex = new RecordIndex<Auction>(
  'auction',
  codec,
  (a) => [a.publisherAccountId, a.winnerAccountId],
  (a) => FINAL.has(a.state),
);

const invalid = (message: string): MarketError => new MarketError(MarketErrorCode.INVALID_ARGUMENT, message);
const notFound = (id: string): AppError => new AppError('AUCTION_NOT_FOUND', `no auction ${id}`, 404);
const PPM = 1_000_000n;

/** The documented score of a bid, in ppm-weighted units (lower is better). */
export function scoreBid(
  a: Pick<Auction, 'maxRewardMsat' | 'maxPromisedSeconds' | 'weights'>,
  bid: AuctionBid,
  rep: Reputation,
): number {
  const price = (bid.priceMsat * PPM) / a.maxRewardMsat;
  const time = (BigInt(bid.promisedSeconds) * PPM) / BigInt(a.maxPromisedSeconds);
  const bad = BigInt(rep.disputed + rep.lost + rep.late);
  const seen = BigInt(rep.completed + rep.disputed + rep.late + 1);
  const riskRaw = (bad * PPM) / seen;
  const risk = riskRaw > PPM ? PPM : riskRaw;
  return Number(
    BigInt(a.weights.price) * price + BigInt(a.weights.time) * time + BigInt(a.weights.reputation) * risk,
  );
}

export class TaskAuctions {
  private readonly auctions: IndexedItems<Auction>;
  private readonly queue = new KeyedQueue();
  /** Per publisher, its auctions not closed yet (open or awarding: those in memory). */
  private readonly livePerAccount = new Map<string, number>();
  private readonly maxOpen: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: {
      ledger: Ledger;
      tasks: TaskMarket;
      registry: ServiceRegistry;
      publish: (accountId: string, event: { type: 'auction'; auction: Auction }) => void;
      log: Logger;
      now?: () => number;
      /** The most auctions one account may have open (or awarding) at once (default 100). */
      maxOpenPerAccount?: number;
    },
  ) {
    this.auctions = new IndexedItems(auctionIndex, deps.ledger);
    this.maxOpen = deps.maxOpenPerAccount ?? DEFAULT_MAX_OPEN_PER_ACCOUNT;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async start(sweepMs = 1000): Promise<void> {
    await this.load();
    this.startDuties(sweepMs);
  }

  /** The open auctions: what every instance needs to serve requests. */
  async load(): Promise<void> {
    await this.auctions.load();
    for (const a of this.auctions.values()) this.count(a.publisherAccountId, 1);
  }

  /** The leader's part: the sweep that closes auctions at their deadline. */
  startDuties(sweepMs = 1000): void {
    this.stopDuties();
    this.timer = setInterval(
      () => void this.sweep().catch((err: unknown) => this.deps.log.error({ err }, 'auction sweep failed')),
      sweepMs,
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

  async open(publisherAccountId: string, input: OpenAuctionInput, idempotencyKey?: string): Promise<Auction> {
    return this.deps.ledger.idempotent(
      { accountId: publisherAccountId, key: idempotencyKey, operation: 'auction', request: input },
      (records) => this.openOnce(publisherAccountId, input, records),
      (id) => this.get(id),
    );
  }

  private async openOnce(
    publisherAccountId: string,
    input: OpenAuctionInput,
    idem: (id: string) => SideRecords,
  ): Promise<Auction> {
    await this.deps.ledger.requireAccount(publisherAccountId);
    const title = input.title.trim();
    if (title.length === 0 || title.length > 200) throw invalid('title must be 1 to 200 characters');
    if (input.maxRewardMsat < 1n) throw invalid('maxRewardMsat must be positive');
    for (const [k, v] of [
      ['bidSeconds', input.bidSeconds],
      ['maxPromisedSeconds', input.maxPromisedSeconds],
      ['reviewSeconds', input.reviewSeconds ?? 1],
    ] as const)
      if (!Number.isSafeInteger(v) || v < 1 || v > 366 * 86_400)
        throw invalid(`${k} must be 1 to 31622400 seconds`);
    const weights = input.weights ?? DEFAULT_WEIGHTS;
    for (const w of [weights.price, weights.time, weights.reputation])
      if (!Number.isSafeInteger(w) || w < 0 || w > 1000)
        throw invalid('weights must be integers from 0 to 1000');
    // Checked and counted in one synchronous step (no await between), so concurrent opens cannot
    // both take the last place; the count follows what is in memory (closing uncounts it).
    if ((this.livePerAccount.get(publisherAccountId) ?? 0) >= this.maxOpen)
      throw new MarketError(
        MarketErrorCode.TOO_MANY_OPEN_AUCTIONS,
        `at most ${this.maxOpen} open auctions per account`,
      );
    const now = this.now();
    const a: Auction = {
      id: randomUUID(),
      publisherAccountId,
      title,
      description: input.description ?? '',
      capabilities: capabilities(input.capabilities ?? []),
      maxRewardMsat: input.maxRewardMsat,
      maxPromisedSeconds: input.maxPromisedSeconds,
      reviewSeconds: input.reviewSeconds ?? 24 * 3600,
      bidDeadline: now + input.bidSeconds * 1000,
      selection: input.selection ?? 'auto',
      weights,
      bids: [],
      state: 'open',
      createdAt: now,
    };
    this.count(publisherAccountId, 1);
    await this.save(a, idem(a.id));
    return this.view(a);
  }

  /** A provider bids (again: its new bid replaces its old one). */
  bid(auctionId: string, accountId: string, priceMsat: Msat, promisedSeconds: number): Promise<Auction> {
    return this.queue.run(auctionId, async () => {
      const a = await this.must(auctionId);
      if (a.state !== 'open' || this.now() >= a.bidDeadline)
        throw new MarketError(MarketErrorCode.INVALID_STATE, 'the auction takes no more bids', {
          state: a.state,
        });
      if (accountId === a.publisherAccountId)
        throw new MarketError(MarketErrorCode.FORBIDDEN, 'a publisher cannot bid on its own auction');
      await this.deps.ledger.requireAccount(accountId);
      const has = this.deps.registry.capabilitiesOf(accountId);
      const missing = a.capabilities.filter((c) => !has.has(c));
      if (missing.length > 0)
        throw new MarketError(
          MarketErrorCode.MISSING_CAPABILITY,
          `advertise these capabilities first: ${missing.join(', ')}`,
          { missing },
        );
      if (priceMsat < 1n || priceMsat > a.maxRewardMsat)
        throw invalid(`priceMsat must be 1 to ${a.maxRewardMsat}`);
      if (
        !Number.isSafeInteger(promisedSeconds) ||
        promisedSeconds < 1 ||
        promisedSeconds > a.maxPromisedSeconds
      )
        throw invalid(`promisedSeconds must be 1 to ${a.maxPromisedSeconds}`);
      const others = a.bids.filter((b) => b.accountId !== accountId);
      if (others.length >= MAX_BIDS)
        throw new AppError('TOO_MANY_BIDS', `an auction takes at most ${MAX_BIDS} bidders`, 429);
      a.bids = [...others, { accountId, priceMsat, promisedSeconds, at: this.now() }];
      await this.save(a);
      return auctionSeenBy(this.view(a), { kind: 'account', id: accountId })!;
    });
  }

  /** The bids with their scores and the bidders' reputations, best first. */
  async ranking(a: Auction): Promise<ScoredBid[]> {
    const scored: ScoredBid[] = [];
    for (const b of a.bids) {
      const reputation = await this.deps.tasks.reputation(b.accountId);
      scored.push({ ...b, reputation, score: scoreBid(a, b, reputation) });
    }
    return scored.sort((x, y) => x.score - y.score || x.at - y.at);
  }

  /**
   * Awards the auction: to the bidder the buyer names (any time it is open), or to the best score
   * (the buyer without a name, or the sweep at the deadline of an `auto` auction).
   */
  award(auctionId: string, by: AuctionActor, bidder?: string): Promise<Auction> {
    return this.queue.run(auctionId, async () => {
      const a = await this.must(auctionId);
      if (by.kind === 'account' && by.id !== a.publisherAccountId)
        throw new MarketError(MarketErrorCode.FORBIDDEN, 'only the publisher awards its auction');
      if (a.state !== 'open' && a.state !== 'awarding')
        throw new MarketError(MarketErrorCode.INVALID_STATE, `the auction is ${a.state}`, { state: a.state });
      if (a.state === 'open') {
        const ranked = await this.ranking(a);
        const winner = bidder !== undefined ? ranked.find((b) => b.accountId === bidder) : ranked[0];
        if (!winner) {
          if (bidder !== undefined) throw invalid(`${bidder} has not bid`);
          a.state = 'expired';
          return this.close(a);
        }
        // The intent first: a restart finishes the award (the task's idempotency key makes it once).
        a.state = 'awarding';
        a.winnerAccountId = winner.accountId;
        await this.save(a);
      }
      return this.finishAward(a);
    });
  }

  private async finishAward(a: Auction): Promise<Auction> {
    const winner = a.winnerAccountId!;
    const bid = a.bids.find((b) => b.accountId === winner)!;
    try {
      // One step: the task is published already claimed by the winner (its escrow names it payee)
      // in the batch that locks the reward, so no other agent can take it and a refusal (the
      // winner can no longer take it, the buyer cannot fund it) locks nothing. The key makes a
      // resumed award find the task it already published instead of locking again.
      const task = await this.deps.tasks.publishTask(a.publisherAccountId, {
        title: a.title,
        description: a.description,
        capabilities: a.capabilities,
        rewardMsat: bid.priceMsat,
        deadlineSeconds: bid.promisedSeconds,
        reviewSeconds: a.reviewSeconds,
        agentAccountId: winner,
        idempotencyKey: `auction:${a.id}`,
      });
      a.taskId = task.id;
      if (task.agentAccountId === winner) a.state = 'awarded';
      else {
        a.state = 'failed';
        a.failCode = 'AUCTION_WINNER_MISMATCH';
      }
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      a.state = 'failed';
      a.failCode = err.code;
    }
    return this.close(a);
  }

  /** Saves an auction that reached a final state: it no longer counts against its publisher's cap. */
  private async close(a: Auction): Promise<Auction> {
    a.closedAt = this.now();
    this.count(a.publisherAccountId, -1);
    await this.save(a);
    return this.view(a);
  }

  private count(accountId: string, delta: 1 | -1): void {
    const n = (this.livePerAccount.get(accountId) ?? 0) + delta;
    if (n <= 0) this.livePerAccount.delete(accountId);
    else this.livePerAccount.set(accountId, n);
  }

  async get(id: string): Promise<Auction> {
    return this.view(await this.must(id));
  }

  /** The auction as `viewer` sees it (`auctionSeenBy`); one it may not see is not found. */
  async show(id: string, viewer: AuctionViewer): Promise<Auction> {
    const seen = auctionSeenBy(this.view(await this.must(id)), viewer);
    if (!seen) throw notFound(id);
    return seen;
  }

  /**
   * Open auctions (from memory), newest first, as `viewer` sees them; `capability` keeps those
   * these capabilities can bid on.
   */
  listOpen(viewer: AuctionViewer, capability?: string[]): Auction[] {
    const has = capability ? new Set(capabilities(capability)) : undefined;
    return [...this.auctions.values()]
      .filter((a) => a.state === 'open' && (has === undefined || a.capabilities.every((c) => has.has(c))))
      .sort((x, y) => y.createdAt - x.createdAt)
      .map((a) => auctionSeenBy(this.view(a), viewer)!);
  }

  /** An account's auctions (published or won), newest first, a page at a time from disk, as `viewer` sees them. */
  async list(
    accountId: string,
    viewer: AuctionViewer,
    page: { limit?: number; before?: string } = {},
  ): Promise<{ auctions: Auction[]; next?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 500);
    const { entries, next } = await auctionIndex.page(this.deps.ledger, accountId, limit, page.before);
    const auctions: Auction[] = [];
    for (const { id } of entries) {
      const a = await this.auctions.peek(id);
      const seen = a && auctionSeenBy(this.view(a), viewer);
      if (seen) auctions.push(seen);
    }
    return { auctions, ...(next ? { next } : {}) };
  }

  /** Auto auctions past their deadline are awarded; awards a crash interrupted are finished. */
  async sweep(): Promise<void> {
    const now = this.now();
    for (const a of [...this.auctions.values()]) {
      const due =
        a.state === 'awarding' ||
        (a.state === 'open' &&
          now >= a.bidDeadline &&
          (a.selection === 'auto' || now >= a.bidDeadline + MANUAL_GRACE_MS || a.bids.length === 0));
      if (!due) continue;
      await this.award(a.id, { kind: 'sweep' }).catch((err: unknown) =>
        this.deps.log.warn({ err, auctionId: a.id }, 'closing an auction failed; retrying'),
      );
    }
  }

  private async must(id: string): Promise<Auction> {
    const a = typeof id === 'string' ? await this.auctions.find(id) : undefined;
    if (!a) throw notFound(String(id));
    return a;
  }

  private async save(a: Auction, extra: SideRecords = []): Promise<void> {
    this.auctions.remember(a);
    await this.deps.ledger.putRecords([...auctionIndex.records(a), ...extra]);
    const view = this.view(a);
    this.deps.publish(a.publisherAccountId, { type: 'auction', auction: view });
    const winner = a.winnerAccountId;
    if (winner !== undefined)
      this.deps.publish(winner, {
        type: 'auction',
        auction: auctionSeenBy(view, { kind: 'account', id: winner })!,
      });
  }

  private view(a: Auction): Auction {
    return {
      ...a,
      capabilities: [...a.capabilities],
      weights: { ...a.weights },
      bids: a.bids.map((b) => ({ ...b })),
    };
  }
}
