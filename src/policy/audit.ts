import { Type } from '@sinclair/typebox';
import { createHash, randomUUID } from 'node:crypto';
import type { RecordStore } from '../ledger/store.js';
import { Literals, recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import type { Decision, SpendRequest } from './types.js';

export interface AuditEntry {
  id: string;
  at: number;
  accountId: string;
  action: SpendRequest['kind'];
  /** sha256 of the canonical request: proves what was asked without storing it twice. */
  argsHash: string;
  outcome: Decision['outcome'];
  code?: string;
  reason?: string;
  rules: Decision['evaluated'];
  paymentId?: string;
}

const pad = (n: number): string => String(n).padStart(15, '0');
const PREFIX = PREFIXES.audit.prefix;

const Outcome = Literals('allow', 'deny', 'needs_approval');
/** Read back with its shape checked. Written with plain JSON.stringify: an entry has no amounts. */
const auditCodec: RecordCodec<AuditEntry> = recordCodec(
  'audit entry',
  Type.Object({
    id: Type.String(),
    at: Type.Number(),
    accountId: Type.String(),
    action: Literals('bolt11', 'keysend', 'internal_transfer', 'l402', 'stream', 'escrow'),
    argsHash: Type.String(),
    outcome: Outcome,
    code: Type.Optional(Type.String()),
    reason: Type.Optional(Type.String()),
    rules: Type.Array(
      Type.Object({
        rule: Literals(
          'frozen',
          'policy',
          'no_spending',
          'max_per_payment',
          'budget',
          'max_share_of_balance',
          'min_reserve',
          'payee_allowlist',
          'payee_denylist',
          'max_in_flight',
          'max_per_minute',
          'approval_above',
        ),
        outcome: Outcome,
        reason: Type.Optional(Type.String()),
      }),
    ),
    paymentId: Type.Optional(Type.String()),
  }),
);

export function argsHash(req: SpendRequest): string {
  const canonical = JSON.stringify({
    kind: req.kind,
    amountMsat: req.amountMsat.toString(),
    feeLimitMsat: req.feeLimitMsat.toString(),
    payee: {
      pubkey: req.payee.pubkey ?? null,
      domain: req.payee.domain ?? null,
      accountId: req.payee.accountId ?? null,
    },
  });
  return createHash('sha256').update(canonical).digest('hex');
}

/** Every policy decision, per account, newest first on query. Written with the ledger's group commit. */
export class AuditLog {
  constructor(private readonly store: RecordStore) {}

  record(
    accountId: string,
    req: SpendRequest,
    decision: Decision,
    at: number,
    paymentId?: string,
  ): AuditEntry {
    const entry: AuditEntry = {
      id: randomUUID(),
      at,
      accountId,
      action: req.kind,
      argsHash: argsHash(req),
      outcome: decision.outcome,
      rules: decision.evaluated,
      ...(decision.code ? { code: decision.code } : {}),
      ...(decision.reason ? { reason: decision.reason } : {}),
      ...(paymentId ? { paymentId } : {}),
    };
    void this.store
      .putRecords([{ key: `${PREFIX}${accountId}!${pad(at)}!${entry.id}`, value: JSON.stringify(entry) }])
      .catch(() => undefined);
    return entry;
  }

  async query(accountId: string, options: { limit: number; before?: string }): Promise<AuditEntry[]> {
    const rows = await this.store.listRecords(`${PREFIX}${accountId}!`, {
      reverse: true,
      limit: options.limit,
      ...(options.before ? { after: `${PREFIX}${accountId}!${options.before}` } : {}),
    });
    return rows.map((r) => auditCodec.decode(r.value));
  }
}
