import { createHash, randomUUID } from 'node:crypto';
import type { RecordStore } from '../ledger/store.js';
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
      .putRecords([{ key: `aud!${accountId}!${pad(at)}!${entry.id}`, value: JSON.stringify(entry) }])
      .catch(() => undefined);
    return entry;
  }

  async query(accountId: string, options: { limit: number; before?: string }): Promise<AuditEntry[]> {
    const rows = await this.store.listRecords(`aud!${accountId}!`, {
      reverse: true,
      limit: options.limit,
      ...(options.before ? { after: `aud!${accountId}!${options.before}` } : {}),
    });
    return rows.map((r) => JSON.parse(r.value) as AuditEntry);
  }
}
