import { Type } from '@sinclair/typebox';
import { AppError } from '../domain/errors.js';
import { BoundedCache } from '../domain/lru.js';
import type { RecordStore } from '../ledger/store.js';
import { MsatField, recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import { WINDOWS, type Policy, type PolicyRule, type WindowName } from './types.js';

const PREFIX = PREFIXES.policy.prefix;
const key = (accountId: string): string => `${PREFIX}${accountId}`;

const Payees = {
  pubkeys: Type.Optional(Type.Array(Type.String())),
  domains: Type.Optional(Type.Array(Type.String())),
};
const Window = Type.Union((Object.keys(WINDOWS) as WindowName[]).map((w) => Type.Literal(w)));
const Rule = Type.Union([
  Type.Object({ type: Type.Literal('no_spending') }),
  Type.Object({ type: Type.Literal('max_per_payment'), maxMsat: MsatField }),
  Type.Object({ type: Type.Literal('budget'), window: Window, maxMsat: MsatField }),
  Type.Object({ type: Type.Literal('max_share_of_balance'), basisPoints: Type.Number() }),
  Type.Object({ type: Type.Literal('min_reserve'), minMsat: MsatField }),
  Type.Object({ type: Type.Literal('payee_allowlist'), ...Payees }),
  Type.Object({ type: Type.Literal('payee_denylist'), ...Payees }),
  Type.Object({ type: Type.Literal('max_in_flight'), max: Type.Number() }),
  Type.Object({ type: Type.Literal('max_per_minute'), max: Type.Number() }),
  Type.Object({ type: Type.Literal('approval_above'), thresholdMsat: MsatField }),
]);
export const policyCodec: RecordCodec<Policy> = recordCodec(
  'policy',
  Type.Object({
    tier: Type.Optional(
      Type.Union([Type.Literal('L0'), Type.Literal('L1'), Type.Literal('L2'), Type.Literal('L3')]),
    ),
    rules: Type.Array(Rule),
  }),
);

/** Policies kept in memory: the recently used ones (an account's is read from disk when needed). */
const CACHED_POLICIES = 10_000;

/** A synchronous read of a policy that was not loaded first (`ensure`): a wiring error, refused. */
export class PolicyNotLoadedError extends AppError {
  constructor(accountId: string) {
    super('POLICY_NOT_LOADED', `the policy of ${accountId} was read before it was loaded`, 500);
  }
}

/**
 * Policies per account, persisted as side records (`pol!<account>`), read on demand into a
 * bounded cache for synchronous evaluation. A synchronous step that evaluates an account's
 * policy (the payments' check-and-reserve) first awaits `ensure(accountId)`; `get` then answers
 * from memory, and an entry used within the last minute is never evicted. "No policy" is cached
 * too (as `null`), so an account without one costs one disk read per eviction, not per payment.
 */
export class PolicyRegistry {
  private readonly policies: BoundedCache<string, Policy | null>;
  /** Reads in progress, so concurrent `ensure`s of one account read once. */
  private readonly reading = new Map<string, Promise<void>>();

  constructor(
    private readonly store: RecordStore,
    options: {
      cached?: number;
      now?: () => number;
      /**
       * Accounts whose policy stays resident whatever the cache's size: those a synchronous step
       * may evaluate without an `ensure` first (a running stream's payer, asked again for each
       * new chunk by the stream scheduler's tick).
       */
      keep?: (accountId: string) => boolean;
    } = {},
  ) {
    this.policies = new BoundedCache(
      options.cached ?? CACHED_POLICIES,
      options.now ?? Date.now,
      undefined,
      options.keep,
    );
  }

  /** Makes the policies of these accounts resident, for a synchronous `get` right after. */
  async ensure(accountIds: string | readonly string[]): Promise<void> {
    const ids = typeof accountIds === 'string' ? [accountIds] : accountIds;
    await Promise.all(ids.map((id) => (this.policies.get(id) !== undefined ? undefined : this.read(id))));
  }

  /** True when the policies of these accounts are resident (`ensure` would read nothing). */
  resident(accountIds: readonly string[]): boolean {
    for (const id of accountIds) if (this.policies.get(id) === undefined) return false;
    return true;
  }

  /**
   * The account's policy from memory (undefined: the account has none). Throws
   * `POLICY_NOT_LOADED` when it is not resident: call `ensure` first.
   */
  get(accountId: string): Policy | undefined {
    const p = this.policies.get(accountId);
    if (p === undefined) throw new PolicyNotLoadedError(accountId);
    return p ?? undefined;
  }

  /** The account's policy, read from disk if needed. */
  async find(accountId: string): Promise<Policy | undefined> {
    await this.ensure(accountId);
    return this.get(accountId);
  }

  /**
   * Drops what is cached of these accounts' policies: on a shared store, when this instance takes
   * an account's lease (another instance may have changed its policy while holding it).
   */
  forget(accountIds: readonly string[]): void {
    for (const id of accountIds) this.policies.delete(id);
  }

  async set(accountId: string, policy: Policy): Promise<Policy> {
    const copy: Policy = {
      ...(policy.tier ? { tier: policy.tier } : {}),
      rules: policy.rules.map((r): PolicyRule => ({ ...r })),
    };
    await this.store.putRecords([{ key: key(accountId), value: policyCodec.encode(copy) }]);
    this.policies.set(accountId, copy);
    return copy;
  }

  private read(accountId: string): Promise<void> {
    let reading = this.reading.get(accountId);
    if (!reading) {
      reading = this.store
        .getRecord(key(accountId))
        .then((raw) => {
          // A `set` that finished meanwhile is newer than what was read.
          if (this.policies.get(accountId) === undefined)
            this.policies.set(accountId, raw === undefined ? null : policyCodec.decode(raw));
        })
        .finally(() => this.reading.delete(accountId));
      this.reading.set(accountId, reading);
    }
    return reading;
  }
}
