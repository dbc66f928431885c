import { Type } from '@sinclair/typebox';
import { hash, randomUUID } from 'node:crypto';
import type { RecordStore } from '../ledger/store.js';
import { Literals, recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import type { Decision, RuleResult, SpendRequest } from './types.js';

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

/** A JSON string or null, as JSON.stringify writes it. */
const jsonOrNull = (s: string | undefined): string => (s === undefined ? 'null' : JSON.stringify(s));

/**
 * The canonical request, byte for byte
 * `JSON.stringify({kind, amountMsat, feeLimitMsat, payee: {pubkey, domain, accountId}})` with the
 * amounts as decimal strings and absent payee fields as null — built without the intermediate
 * objects (it runs for every policy decision).
 */
export function canonicalRequest(req: SpendRequest): string {
  return (
    `{"kind":${JSON.stringify(req.kind)},"amountMsat":"${req.amountMsat}","feeLimitMsat":"${req.feeLimitMsat}",` +
    `"payee":{"pubkey":${jsonOrNull(req.payee.pubkey)},"domain":${jsonOrNull(req.payee.domain)},` +
    `"accountId":${jsonOrNull(req.payee.accountId)}}}`
  );
}

export function argsHash(req: SpendRequest): string {
  // One-shot hash: no Hash object per decision.
  return hash('sha256', canonicalRequest(req), 'hex');
}

/** The JSON of shared (frozen) rule results, each encoded once. */
const frozenRuleJson = new WeakMap<RuleResult, string>();
function ruleJson(r: RuleResult): string {
  if (!Object.isFrozen(r)) return JSON.stringify(r);
  let json = frozenRuleJson.get(r);
  if (json === undefined) frozenRuleJson.set(r, (json = JSON.stringify(r)));
  return json;
}

/**
 * The entry's JSON, byte for byte `JSON.stringify(entry)` (same field order), built from its parts:
 * the strings through JSON.stringify, the rule results shared by most decisions encoded once.
 */
export function encodeAuditEntry(e: AuditEntry): string {
  let rules = '';
  for (const r of e.rules) rules += (rules === '' ? '' : ',') + ruleJson(r);
  return (
    `{"id":${JSON.stringify(e.id)},"at":${JSON.stringify(e.at)},"accountId":${JSON.stringify(e.accountId)},` +
    `"action":${JSON.stringify(e.action)},"argsHash":${JSON.stringify(e.argsHash)},` +
    `"outcome":${JSON.stringify(e.outcome)},"rules":[${rules}]` +
    (e.code !== undefined ? `,"code":${JSON.stringify(e.code)}` : '') +
    (e.reason !== undefined ? `,"reason":${JSON.stringify(e.reason)}` : '') +
    (e.paymentId !== undefined ? `,"paymentId":${JSON.stringify(e.paymentId)}` : '') +
    '}'
  );
}

/** Every policy decision, per account, newest first on query. Written with the ledger's group commit. */
export class AuditLog {
  constructor(private readonly store: RecordStore) {}

  /**
   * Records a decision: written now, or, when `into` is given and the decision allows, appended
   * to `into` for the caller to commit in the same batch as what the decision allows (one write
   * instead of two on the hot path). A caller that gets the record in `into` and then does not
   * commit it (its own step failed) must `write` it.
   */
  record(
    accountId: string,
    req: SpendRequest,
    decision: Decision,
    at: number,
    paymentId?: string,
    into?: { key: string; value: string | null }[],
  ): AuditEntry {
    // Optional fields assigned, not spread (no intermediate objects; same field order).
    const entry: AuditEntry = {
      id: randomUUID(),
      at,
      accountId,
      action: req.kind,
      argsHash: argsHash(req),
      outcome: decision.outcome,
      rules: decision.evaluated,
    };
    if (decision.code) entry.code = decision.code;
    if (decision.reason) entry.reason = decision.reason;
    if (paymentId) entry.paymentId = paymentId;
    const record = { key: `${PREFIX}${accountId}!${pad(at)}!${entry.id}`, value: encodeAuditEntry(entry) };
    if (into && decision.outcome === 'allow') into.push(record);
    else this.write([record]);
    return entry;
  }

  /** Writes audit records on their own (a failed write of the audit trail is not the caller's failure). */
  write(records: { key: string; value: string | null }[]): void {
    if (records.length) void this.store.putRecords(records).catch(() => undefined);
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
