import { Type } from '@sinclair/typebox';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { BoundedCache } from '../domain/lru.js';
import type { Msat } from '../domain/msat.js';
import type { Ledger } from '../ledger/ledger.js';
import type { L402Gate, ServiceTerms } from '../l402/gate.js';
import type { SubscriptionCaveats } from '../l402/subscription-caveats.js';
import { recordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import type { Period } from './pricing/subscription.js';

/**
 * The state of subscription credentials (docs/L402.md, "Subscriptions"): one `sub!<token id>`
 * record each, written at its first paid use (the period's price moved from the credential's
 * credit to the service's revenue in the same batch), then with every request counted. Only a
 * bounded cache of them is in memory; the count of a request is durable before its response
 * leaves (the proxy waits for `write`, as for a charge).
 */

const Pending = Type.Object(
  { hash: Type.String({ pattern: '^[0-9a-f]{64}$' }), request: Type.String(), expiresAt: Type.Integer() },
  { additionalProperties: false },
);

const SubscriptionRecordSchema = Type.Object(
  {
    service: Type.String(),
    /** The current period, unix seconds. */
    periodStart: Type.Integer({ minimum: 0 }),
    periodEnd: Type.Integer({ minimum: 0 }),
    /** Requests served in it (included ones and overage). */
    used: Type.Integer({ minimum: 0 }),
    renewals: Type.Integer({ minimum: 0 }),
    /** The renewal invoice handed out and not yet credited. */
    renewal: Type.Optional(Pending),
    /** The overage-credit invoice handed out and not yet credited. */
    credit: Type.Optional(Pending),
  },
  { additionalProperties: false },
);
export type SubscriptionRecord = Period & {
  service: string;
  renewals: number;
  renewal?: PendingInvoice;
  credit?: PendingInvoice;
};
type PendingInvoice = { hash: string; request: string; expiresAt: number };

const codec = recordCodec('subscription', SubscriptionRecordSchema);
const keyOf = (tokenId: string): string => `${PREFIXES.subscription.prefix}${tokenId}`;
/** The ledger code of a period's price moved from the credential's credit to the service. */
const CODE = 'l402_subscription';
/** A pending invoice is handed out again until a minute before it expires. */
const REUSE_MARGIN_MS = 60_000;

export interface Subscriber {
  tokenId: string;
  /** The credential's ledger account (`l402:<token id>`). */
  accountId: string;
  terms: SubscriptionCaveats;
  service: string;
  /** The service's revenue account (resident-able, created). */
  revenue: string;
}

export class SubscriptionBook {
  private readonly cache: BoundedCache<string, SubscriptionRecord>;
  private readonly queue = new KeyedQueue();

  constructor(
    private readonly ledger: Ledger,
    private readonly gate: Pick<L402Gate, 'topUp' | 'toppedUp'>,
    cacheSize = 10_000,
  ) {
    this.cache = new BoundedCache(cacheSize);
  }

  /**
   * The subscription of a credential, resident for the synchronous step that counts a request
   * (`takeUse`): started at its first use, renewed when its period is over and its renewal
   * invoice is paid (exactly once: the ledger key of the renewal's payment hash), its
   * overage-credit invoice dropped once paid.
   */
  prepare(s: Subscriber, nowMs: number): Promise<SubscriptionRecord> {
    return this.queue.run(s.tokenId, async () => {
      const rec = this.cache.get(s.tokenId) ?? (await this.read(s.tokenId)) ?? (await this.start(s));
      if (rec.credit && rec.used >= s.terms.includedRequests) {
        if (await this.gate.toppedUp(rec.credit.hash, s.accountId)) {
          delete rec.credit;
          await this.write(s.tokenId, rec);
        }
      }
      if (rec.renewal && nowMs >= rec.periodEnd * 1000) {
        if (await this.gate.toppedUp(rec.renewal.hash, s.accountId)) await this.renew(s, rec, nowMs);
      }
      return rec;
    });
  }

  /** Makes a subscription's state durable (group-committed like a charge). */
  write(tokenId: string, rec: SubscriptionRecord): Promise<void> {
    return this.ledger.putRecords([{ key: keyOf(tokenId), value: codec.encode(rec) }]);
  }

  /**
   * Takes back the count of a request that served nothing (the upstream failed or answered an
   * error status), if its period (by its start) is still the current one.
   */
  uncount(tokenId: string, periodStart: number): Promise<void> {
    return this.queue.run(tokenId, async () => {
      const rec = this.cache.get(tokenId) ?? (await this.read(tokenId));
      if (!rec || rec.periodStart !== periodStart || rec.used === 0) return;
      rec.used -= 1;
      await this.write(tokenId, rec);
    });
  }

  /**
   * The invoice of a renewal (the period's price) or of overage credit (`amount`) for a
   * credential: the one handed out before while it is good, else a new top-up of the credential
   * (`fresh`).
   */
  invoice(
    s: Subscriber,
    kind: 'renewal' | 'credit',
    service: ServiceTerms,
    amount: Msat,
    nowMs: number,
  ): Promise<PendingInvoice & { fresh: boolean }> {
    return this.queue.run(s.tokenId, async () => {
      const rec = this.cache.get(s.tokenId) ?? (await this.read(s.tokenId));
      if (!rec) throw new Error(`subscription ${s.tokenId} is not started`);
      const known = rec[kind];
      if (known && known.expiresAt - REUSE_MARGIN_MS > nowMs) return { ...known, fresh: false };
      const inv = await this.gate.topUp(
        s.tokenId,
        service,
        amount,
        kind === 'renewal' ? 'renewal' : 'top-up',
      );
      const made = { hash: inv.paymentHash, request: inv.request, expiresAt: inv.expiresAt };
      rec[kind] = made;
      await this.write(s.tokenId, rec);
      return { ...made, fresh: true };
    });
  }

  private async read(tokenId: string): Promise<SubscriptionRecord | undefined> {
    const raw = await this.ledger.getRecord(keyOf(tokenId));
    if (raw === undefined) return undefined;
    const rec: SubscriptionRecord = codec.decode(raw);
    this.cache.set(tokenId, rec);
    return rec;
  }

  /** The first use: the period's price leaves the credential's credit with the record's first write. */
  private async start(s: Subscriber): Promise<SubscriptionRecord> {
    const rec: SubscriptionRecord = {
      service: s.service,
      periodStart: s.terms.periodStart,
      periodEnd: s.terms.periodEnd,
      used: 0,
      renewals: 0,
    };
    await this.charge(s, `subscription-start:${s.tokenId}`, rec, 'first period');
    this.cache.set(s.tokenId, rec);
    return rec;
  }

  /** A paid renewal: the next period from now, the price charged once per renewal invoice. */
  private async renew(s: Subscriber, rec: SubscriptionRecord, nowMs: number): Promise<void> {
    const start = Math.max(rec.periodEnd, Math.floor(nowMs / 1000));
    const next: SubscriptionRecord = {
      ...rec,
      periodStart: start,
      periodEnd: start + (s.terms.periodEnd - s.terms.periodStart),
      used: 0,
      renewals: rec.renewals + 1,
    };
    delete next.renewal;
    if (await this.charge(s, `subscription-renewal:${rec.renewal!.hash}`, next, 'renewal')) {
      Object.assign(rec, next);
      delete rec.renewal;
    } else {
      // Renewed already (the record on disk says so): take it as it is.
      const stored = await this.ledger.getRecord(keyOf(s.tokenId));
      if (stored === undefined) return;
      delete rec.renewal;
      delete rec.credit;
      Object.assign(rec, codec.decode(stored));
    }
  }

  /**
   * Moves the period's price from the credential to the service, with the record in the same
   * batch, under an idempotency key; durable before it returns. False when the key was used.
   */
  private async charge(s: Subscriber, key: string, rec: SubscriptionRecord, memo: string): Promise<boolean> {
    await this.ledger.ensure({ spend: [s.accountId], accounts: [s.revenue], keys: [key] });
    const t = this.ledger.transfer(
      {
        debitAccountId: s.accountId,
        creditAccountId: s.revenue,
        amount: s.terms.priceMsat,
        code: CODE,
        idempotencyKey: key,
        memo: `subscription ${memo}`,
      },
      [{ key: keyOf(s.tokenId), value: codec.encode(rec) }],
    );
    await t.durable;
    return !t.replayed;
  }
}
