import { randomUUID } from 'node:crypto';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Invoice } from '../lightning/types.js';
import { LIGHTNING_ACCOUNT, OPERATOR_ACCOUNT } from '../ledger/system-accounts.js';
import { Ticker, systemClock, type Clock } from './clock.js';
import { invalid, StreamError, StreamErrorCode } from './errors.js';
import { PREFIXES } from '../records/prefixes.js';
import {
  decodeIncoming,
  hasLapsed,
  inboxCodec,
  inboxKey,
  INCOMING_INDEX_MARK,
  incomingByPrefix,
  incomingKey,
  incomingRecords,
  withPayment,
} from './incoming.js';
import type { Logger } from './ports.js';
import { isUuid, readStreamTag, type StreamTag } from './records.js';
import type { Inbox, InboxDirectory, IncomingStream, StreamPublisher } from './types.js';

export const DEFAULT_GRACE_SECONDS = 5;
export const MAX_GRACE_SECONDS = 24 * 3600;
/** Lapsed incoming streams kept in memory after use (the rest are read from disk when paid). */
const MAX_LAPSED_IN_MEMORY = 1000;

export interface ReceiverDeps {
  ledger: Ledger;
  /** This gateway's node id (known once the payments service has started). */
  nodeId: () => string;
  publish: StreamPublisher;
  log: Logger;
  clock?: Clock;
}

/**
 * Receives streams paid to this gateway's node by keysend. Every settled keysend is credited
 * exactly once (idempotency key `keysend:<hash>`): to the account behind the recipient id it
 * carries, or to the operator when there is none. Each incoming stream is summarized; a stream
 * that stops paying for its inbox's grace period is reported lapsed, and resumed if it comes back.
 *
 * Only flowing incoming streams are in memory (what the lapse check visits). A lapsed one stays on
 * disk: a payment for it reads its summary back (so it can resume at any age), listings page
 * from disk.
 */
export class StreamReceiver implements InboxDirectory {
  private readonly inboxes = new Map<string, Inbox>();
  /** Incoming streams still flowing (not lapsed). */
  private readonly incoming = new Map<string, IncomingStream>();
  /**
   * Lapsed ones lately written or read, newest last (bounded): memory wins over a copy read from
   * disk before, so concurrent payments of a lapsed stream each see the others'.
   */
  private readonly lapsed = new Map<string, IncomingStream>();
  private readonly clock: Clock;
  private readonly ticker: Ticker;

  constructor(private readonly deps: ReceiverDeps) {
    this.clock = deps.clock ?? systemClock;
    this.ticker = new Ticker(this.clock, 1000, () => this.checkLapses());
  }

  async start(): Promise<void> {
    await this.load();
    this.startLapseChecks();
  }

  /** The inboxes and the flowing incoming streams: what every instance needs to serve requests. */
  async load(): Promise<void> {
    for (const r of await this.deps.ledger.listRecords(PREFIXES.streamInbox.prefix)) {
      const inbox = inboxCodec.decode(r.value);
      this.inboxes.set(inbox.recipientId, inbox);
    }
    this.incoming.clear();
    this.lapsed.clear();
    if ((await this.deps.ledger.getRecord(INCOMING_INDEX_MARK)) === undefined) await this.reindex();
    const open = PREFIXES.streamIncomingOpen.prefix;
    for (const r of await this.deps.ledger.listRecords(open)) {
      const s = await this.readIncoming(r.key.slice(open.length));
      if (s && !s.lapsed) this.incoming.set(s.streamId, s);
    }
  }

  /** The leader's part: the check that marks incoming streams lapsed when their payments stop. */
  startLapseChecks(): void {
    this.ticker.start();
  }

  /** A store from before the indexes: every summary gets its entries, a page at a time, once. */
  private async reindex(): Promise<void> {
    const prefix = PREFIXES.streamIncoming.prefix;
    let after: string | undefined;
    for (;;) {
      const page = await this.deps.ledger.listRecords(prefix, { limit: 500, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      await this.deps.ledger.putRecords(page.flatMap((r) => incomingRecords(decodeIncoming(r.value), true)));
      after = page[page.length - 1]!.key;
    }
    await this.deps.ledger.putRecords([{ key: INCOMING_INDEX_MARK, value: String(Date.now()) }]);
  }

  private async readIncoming(streamId: string): Promise<IncomingStream | undefined> {
    if (!isUuid(streamId)) return undefined;
    const raw = await this.deps.ledger.getRecord(incomingKey(streamId));
    return raw === undefined ? undefined : decodeIncoming(raw);
  }

  /** The summary: a flowing one from memory, a lapsed one from disk. */
  private async findIncoming(streamId: string): Promise<IncomingStream | undefined> {
    const s = this.inMemory(streamId) ?? (await this.readIncoming(streamId));
    // Another call may have changed it meanwhile: memory wins.
    return this.inMemory(streamId) ?? s;
  }

  private inMemory(streamId: string): IncomingStream | undefined {
    return this.incoming.get(streamId) ?? this.lapsed.get(streamId);
  }

  /** Files a summary by its state: flowing ones in memory, lapsed ones in the bounded cache. */
  private remember(s: IncomingStream): void {
    this.lapsed.delete(s.streamId);
    if (!s.lapsed) {
      this.incoming.set(s.streamId, s);
      return;
    }
    this.incoming.delete(s.streamId);
    this.lapsed.set(s.streamId, s);
    if (this.lapsed.size > MAX_LAPSED_IN_MEMORY) this.lapsed.delete(this.lapsed.keys().next().value!);
  }

  stop(): void {
    this.ticker.stop();
  }

  /** What is in memory: incoming streams still flowing (lapsed ones are on disk). */
  stats(): { flowing: number } {
    return { flowing: this.incoming.size };
  }

  /** A recipient id for an account: remote payers stream to (this node, recipientId). */
  async createInbox(
    accountId: string,
    options: { graceSeconds?: number } = {},
  ): Promise<{ recipientId: string; nodePubkey: string }> {
    const account = await this.deps.ledger.requireAccount(accountId);
    if (account.kind === 'system' || account.kind === 'operator')
      throw invalid('system accounts do not receive streams');
    const grace = options.graceSeconds ?? DEFAULT_GRACE_SECONDS;
    if (!Number.isSafeInteger(grace) || grace < 1 || grace > MAX_GRACE_SECONDS)
      throw invalid(`graceSeconds must be an integer from 1 to ${MAX_GRACE_SECONDS}`);
    const inbox: Inbox = {
      recipientId: randomUUID(),
      accountId,
      graceSeconds: grace,
      createdAt: Math.floor(this.clock.now()),
    };
    await this.deps.ledger.putRecords([
      { key: inboxKey(inbox.recipientId), value: inboxCodec.encode(inbox) },
    ]);
    this.inboxes.set(inbox.recipientId, inbox);
    return { recipientId: inbox.recipientId, nodePubkey: this.deps.nodeId() };
  }

  getInbox(recipientId: string): Inbox {
    const inbox = this.inboxes.get(recipientId);
    if (!inbox) throw new StreamError(StreamErrorCode.INBOX_NOT_FOUND, `no inbox ${recipientId}`);
    return { ...inbox };
  }

  listInboxes(accountId: string): Inbox[] {
    return [...this.inboxes.values()].filter((i) => i.accountId === accountId).map((i) => ({ ...i }));
  }

  accountOf(recipientId: string): string | undefined {
    return this.inboxes.get(recipientId)?.accountId;
  }

  async getIncoming(streamId: string): Promise<IncomingStream | undefined> {
    const s = await this.findIncoming(streamId);
    return s ? { ...s } : undefined;
  }

  /** The account's incoming streams, newest first, a page at a time (`next`: pass as `before`). */
  async listIncoming(
    accountId: string,
    page: { limit?: number; before?: string } = {},
  ): Promise<{ incoming: IncomingStream[]; next?: string }> {
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const prefix = incomingByPrefix(accountId);
    const entries = await this.deps.ledger.listRecords(prefix, {
      reverse: true,
      limit: limit + 1,
      ...(page.before !== undefined ? { after: prefix + page.before } : {}),
    });
    const shown = entries.slice(0, limit);
    const incoming: IncomingStream[] = [];
    for (const r of shown) {
      const s = await this.findIncoming(r.value);
      if (s) incoming.push({ ...s });
    }
    const last = shown[shown.length - 1];
    return {
      incoming,
      ...(entries.length > limit && last ? { next: last.key.slice(prefix.length) } : {}),
    };
  }

  /** Called for every invoice update from LND; acts on settled keysends only. Idempotent. */
  async onInvoice(invoice: Invoice): Promise<void> {
    if (!invoice.isKeysend || invoice.state !== 'settled' || invoice.receivedMsat <= 0n) return;
    const key = `keysend:${invoice.paymentHash}`;
    if (await this.deps.ledger.findByIdempotencyKey(key)) return;
    const tag = this.tagOf(invoice);
    const known = tag?.streamId !== undefined ? await this.findIncoming(tag.streamId) : undefined;
    const inbox = this.inboxOf(tag, known);
    const accountId =
      inbox && (await this.deps.ledger.getAccount(inbox.accountId)) ? inbox.accountId : undefined;
    // From here to the credit: one synchronous step.
    await this.deps.ledger.ensure({
      accounts: [LIGHTNING_ACCOUNT, accountId ?? OPERATOR_ACCOUNT],
      keys: [key],
    });
    if (!accountId) {
      this.deps.log.warn(
        { paymentHash: invoice.paymentHash, recipientId: tag?.recipientId, streamId: tag?.streamId },
        'keysend without a known recipient; credited to the operator',
      );
    }
    const now = this.clock.now();
    const at = Math.min(invoice.settledAt?.getTime() ?? now, now);
    let summary: IncomingStream | undefined;
    if (accountId && inbox && tag?.streamId !== undefined) {
      // Memory wins: another payment may have changed it since it was read.
      const prev = this.inMemory(tag.streamId) ?? known;
      if (prev && prev.recipientId !== inbox.recipientId) {
        this.deps.log.warn({ streamId: tag.streamId }, 'stream id reused for another recipient; not tracked');
      } else {
        summary = withPayment(prev, {
          streamId: tag.streamId,
          recipientId: inbox.recipientId,
          accountId,
          amount: invoice.receivedMsat,
          seq: tag.seq,
          at,
        });
        if (summary.lapsed && now - at <= inbox.graceSeconds * 1000) summary.lapsed = false;
      }
    }
    const first = summary !== undefined && (this.inMemory(summary.streamId) ?? known) === undefined;
    let applied;
    try {
      applied = this.deps.ledger.transfer(
        {
          debitAccountId: LIGHTNING_ACCOUNT,
          creditAccountId: accountId ?? OPERATOR_ACCOUNT,
          amount: invoice.receivedMsat,
          code: 'stream_in',
          idempotencyKey: key,
          memo: tag?.streamId !== undefined ? `stream ${tag.streamId}` : `keysend ${invoice.paymentHash}`,
        },
        summary ? incomingRecords(summary, first) : [],
      );
    } catch (err) {
      // Credited before under other terms (e.g. the inbox appeared since): it stays as it was.
      if (err instanceof LedgerError && err.code === LedgerErrorCode.IDEMPOTENCY_CONFLICT) return;
      throw err;
    }
    if (applied.replayed) return;
    const prev = summary ? (this.inMemory(summary.streamId) ?? known) : undefined;
    if (summary) {
      this.remember(summary);
    }
    await applied.durable;
    if (summary && prev?.lapsed && !summary.lapsed)
      this.deps.publish(summary.accountId, { type: 'stream_resumed', incoming: { ...summary } });
  }

  /** Reports every flowing stream whose inbox's grace period passed without a payment (once). */
  checkLapses(now = this.clock.now()): void {
    for (const s of this.incoming.values()) {
      const inbox = this.inboxes.get(s.recipientId);
      if (!inbox || !hasLapsed(s, inbox.graceSeconds * 1000, now)) continue;
      s.lapsed = true;
      // A lapsed stream leaves memory; a payment for it reads it back from disk.
      this.remember(s);
      this.deps.ledger
        .putRecords(incomingRecords(s, false))
        .catch((err: unknown) => this.deps.log.warn({ err }, 'could not record a lapsed stream'));
      this.deps.publish(s.accountId, { type: 'stream_lapsed', incoming: { ...s } });
    }
  }

  private tagOf(invoice: Invoice): StreamTag | undefined {
    for (const h of invoice.htlcs) {
      const tag = readStreamTag(h.records);
      if (tag) return tag;
    }
    return undefined;
  }

  /** The inbox a payment is for: its recipient id, or the stream's known recipient. */
  private inboxOf(tag: StreamTag | undefined, known: IncomingStream | undefined): Inbox | undefined {
    if (!tag) return undefined;
    if (tag.recipientId !== undefined) return this.inboxes.get(tag.recipientId);
    return known ? this.inboxes.get(known.recipientId) : undefined;
  }
}
