import { msat } from '../../domain/msat.js';
import type { SpendRecord } from '../../ledger/spend-buckets.js';
import type { StoredAccount } from '../../ledger/store.js';
import type { AccountKind, JournalEntry, Transfer, TransferState } from '../../ledger/types.js';

/** The ledger's rows as the `postgres` client returns them (numerics as strings), and their decoding. */
export interface AccountRow {
  id: string;
  kind: string;
  name: string;
  allow_negative: boolean;
  frozen: boolean;
  credits_posted: string;
  debits_posted: string;
  credits_pending: string;
  debits_pending: string;
  created_at: string;
  /** JSON of the spend buckets. */
  spend: string | null;
}

export interface TransferRow {
  id: string;
  debit_account_id: string;
  credit_account_id: string;
  amount: string;
  state: string;
  code: string;
  memo: string | null;
  idempotency_key: string | null;
  advanced: string | null;
  spent_at: string | null;
  timeout_at: string | null;
  created_at: string;
  resolved_at: string | null;
}

export interface JournalRow {
  seq: string;
  at: string;
  type: JournalEntry['type'];
  account_ids: string[];
  transfer_id: string | null;
  amount: string | null;
  detail: string | null;
}

export function accountOf(r: AccountRow): StoredAccount {
  return {
    account: {
      id: r.id,
      kind: r.kind as AccountKind,
      name: r.name,
      allowNegative: r.allow_negative,
      frozen: r.frozen,
      creditsPosted: BigInt(r.credits_posted),
      debitsPosted: BigInt(r.debits_posted),
      creditsPending: BigInt(r.credits_pending),
      debitsPending: BigInt(r.debits_pending),
      createdAt: Number(r.created_at),
    },
    spend: r.spend === null ? undefined : (JSON.parse(r.spend) as SpendRecord),
  };
}

export function transferOf(r: TransferRow): Transfer {
  const t: Transfer = {
    id: r.id,
    debitAccountId: r.debit_account_id,
    creditAccountId: r.credit_account_id,
    amount: msat(r.amount),
    state: r.state as TransferState,
    code: r.code,
    createdAt: Number(r.created_at),
  };
  if (r.memo !== null) t.memo = r.memo;
  if (r.idempotency_key !== null) t.idempotencyKey = r.idempotency_key;
  if (r.advanced !== null) t.advanced = msat(r.advanced);
  if (r.spent_at !== null) t.spentAt = Number(r.spent_at);
  if (r.timeout_at !== null) t.timeoutAt = Number(r.timeout_at);
  if (r.resolved_at !== null) t.resolvedAt = Number(r.resolved_at);
  return t;
}

export function journalOf(r: JournalRow): JournalEntry {
  return {
    seq: Number(r.seq),
    at: Number(r.at),
    type: r.type,
    accountIds: r.account_ids,
    ...(r.transfer_id !== null ? { transferId: r.transfer_id } : {}),
    ...(r.amount !== null ? { amount: r.amount } : {}),
    ...(r.detail !== null ? { detail: r.detail } : {}),
  };
}
