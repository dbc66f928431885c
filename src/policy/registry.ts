import type { RecordStore } from '../ledger/store.js';
import { msat } from '../domain/msat.js';
import type { Policy, PolicyRule } from './types.js';

const key = (accountId: string): string => `pol!${accountId}`;
const AMOUNT_FIELDS = ['maxMsat', 'minMsat', 'thresholdMsat'] as const;

function decode(raw: string): Policy {
  const p = JSON.parse(raw) as Policy;
  for (const r of p.rules as unknown as Record<string, unknown>[]) {
    for (const f of AMOUNT_FIELDS) if (typeof r[f] === 'string') r[f] = msat(r[f] as string);
  }
  return p;
}

/** Policies per account, held in memory for synchronous evaluation, persisted as side records. */
export class PolicyRegistry {
  private readonly policies = new Map<string, Policy>();

  constructor(private readonly store: RecordStore) {}

  async load(): Promise<void> {
    for (const r of await this.store.listRecords('pol!')) this.policies.set(r.key.slice(4), decode(r.value));
  }

  get(accountId: string): Policy | undefined {
    return this.policies.get(accountId);
  }

  async set(accountId: string, policy: Policy): Promise<Policy> {
    const copy: Policy = {
      ...(policy.tier ? { tier: policy.tier } : {}),
      rules: policy.rules.map((r): PolicyRule => ({ ...r })),
    };
    this.policies.set(accountId, copy);
    await this.store.putRecords([
      {
        key: key(accountId),
        value: JSON.stringify(copy, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
      },
    ]);
    return copy;
  }
}
