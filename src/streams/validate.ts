import { isPubkey } from '../domain/hex.js';
import { MAX_MSAT, msat, type Msat } from '../domain/msat.js';
import { isGatewayAccount, type AccountKind } from '../ledger/types.js';
import { ceilingMsat } from './accrual.js';
import { invalid, StreamError, StreamErrorCode } from './errors.js';
import type { NewStream } from './model.js';
import { isUuid } from './records.js';
import type { Caps, CreateStreamInput, Rate, StreamPayee } from './types.js';

export const DEFAULT_MIN_PAYMENT_MSAT = 1000n;
export const MAX_INTERVAL_SECONDS = 3600;
export const MAX_PER_SECONDS = 366 * 24 * 3600;
export const MAX_DURATION_SECONDS = 10 * 366 * 24 * 3600;
export const MAX_MEMO_LENGTH = 256;

const FIELDS = new Set([
  'payee',
  'rateMsat',
  'perSeconds',
  'priceMsatPerUnit',
  'maxTotalMsat',
  'maxDurationSeconds',
  'intervalSeconds',
  'minPaymentMsat',
  'prefundMsat',
  'memo',
]);

/** What validation needs to know about the gateway. */
export interface ValidationContext {
  payerAccountId: string;
  /** The account's kind, or undefined when there is no such account. */
  accountKind(id: string): AccountKind | undefined;
  /** This gateway's node id. */
  nodeId: string;
  /** The account behind one of this gateway's recipient ids. */
  inboxAccount(recipientId: string): string | undefined;
}

export type ValidStream = Omit<NewStream, 'id' | 'payerAccountId' | 'createdAt'>;

function amount(name: string, v: unknown): Msat | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'bigint' || v < 1n || v > MAX_MSAT)
    throw invalid(`${name} must be a positive msat amount (bigint)`, { field: name });
  return msat(v);
}

function integer(name: string, v: unknown, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max)
    throw invalid(`${name} must be an integer from 1 to ${max}`, { field: name });
  return v;
}

function payeeOf(
  raw: unknown,
  ctx: ValidationContext,
): { payee: StreamPayee; payeeAccountId?: string; destination?: string; recipientId?: string } {
  if (typeof raw !== 'object' || raw === null) throw invalid('payee must be {accountId} or {nodePubkey}');
  const p = raw as Record<string, unknown>;
  const keys = Object.keys(p).filter((k) => p[k] !== undefined);
  if (keys.length === 1 && typeof p['accountId'] === 'string') {
    const accountId = p['accountId'];
    const kind = ctx.accountKind(accountId);
    if (kind === undefined)
      throw new StreamError(StreamErrorCode.STREAM_PAYEE_NOT_FOUND, `no account ${accountId}`);
    if (isGatewayAccount(accountId, kind)) throw invalid('cannot stream to a system account');
    if (accountId === ctx.payerAccountId) throw invalid('an account cannot stream to itself');
    return { payee: { accountId }, payeeAccountId: accountId };
  }
  const onlyNode = keys.every((k) => k === 'nodePubkey' || k === 'recipientId');
  if (!onlyNode || typeof p['nodePubkey'] !== 'string' || !isPubkey(p['nodePubkey']))
    throw invalid('payee must be {accountId} or {nodePubkey (66 lowercase hex), recipientId?}');
  const nodePubkey = p['nodePubkey'];
  const recipientId = p['recipientId'];
  if (recipientId !== undefined && (typeof recipientId !== 'string' || !isUuid(recipientId)))
    throw invalid('payee.recipientId must be a lowercase UUID');
  const payee: StreamPayee = recipientId !== undefined ? { nodePubkey, recipientId } : { nodePubkey };
  if (nodePubkey !== ctx.nodeId) return { payee, destination: nodePubkey, recipientId };
  // Our own node: the money never leaves the gateway (and LND cannot keysend to itself).
  const accountId = recipientId !== undefined ? ctx.inboxAccount(recipientId) : undefined;
  if (accountId === undefined)
    throw new StreamError(
      StreamErrorCode.INBOX_NOT_FOUND,
      'the payee is this gateway: name one of its recipient ids, or pay an account directly',
    );
  if (accountId === ctx.payerAccountId) throw invalid('an account cannot stream to itself');
  return { payee, payeeAccountId: accountId, recipientId };
}

/** Checks a create request field by field; everything the engines rely on is established here. */
export function validateCreate(input: CreateStreamInput, ctx: ValidationContext): ValidStream {
  if (typeof input !== 'object' || input === null) throw invalid('the stream terms must be an object');
  for (const k of Object.keys(input)) if (!FIELDS.has(k)) throw invalid(`unknown field ${k}`, { field: k });
  const to = payeeOf(input.payee, ctx);
  const remote = to.payeeAccountId === undefined;
  const rateMsat = amount('rateMsat', input.rateMsat);
  const price = amount('priceMsatPerUnit', input.priceMsatPerUnit);
  if ((rateMsat === undefined) === (price === undefined))
    throw invalid('give exactly one of rateMsat (time streams) and priceMsatPerUnit (metered streams)');
  const perSeconds = integer('perSeconds', input.perSeconds, MAX_PER_SECONDS);
  if (perSeconds !== undefined && rateMsat === undefined) throw invalid('perSeconds needs rateMsat');
  const rate: Rate =
    rateMsat !== undefined
      ? { kind: 'time', rateMsat, perSeconds: perSeconds ?? 1 }
      : { kind: 'metered', priceMsatPerUnit: price! };
  const maxTotalMsat = amount('maxTotalMsat', input.maxTotalMsat);
  const maxDurationSeconds = integer('maxDurationSeconds', input.maxDurationSeconds, MAX_DURATION_SECONDS);
  const caps: Caps = {
    ...(maxTotalMsat !== undefined ? { maxTotalMsat } : {}),
    ...(maxDurationSeconds !== undefined ? { maxDurationSeconds } : {}),
  };
  if (ceilingMsat(rate, caps) === 0n) throw invalid('under these caps nothing can ever accrue');
  const intervalSeconds = integer('intervalSeconds', input.intervalSeconds, MAX_INTERVAL_SECONDS);
  const minPaymentMsat = amount('minPaymentMsat', input.minPaymentMsat);
  if ((intervalSeconds !== undefined || minPaymentMsat !== undefined) && !('nodePubkey' in to.payee))
    throw invalid('intervalSeconds and minPaymentMsat apply to remote payees (nodePubkey) only');
  const prefundMsat = amount('prefundMsat', input.prefundMsat);
  if (prefundMsat !== undefined && rate.kind !== 'metered')
    throw invalid('prefundMsat applies to metered streams (priceMsatPerUnit) only');
  if (prefundMsat !== undefined && remote)
    throw invalid('prefundMsat applies to payees of this gateway only (remote streams pay as they go)');
  const memo = input.memo;
  if (memo !== undefined && (typeof memo !== 'string' || memo.length > MAX_MEMO_LENGTH))
    throw invalid(`memo must be a string of at most ${MAX_MEMO_LENGTH} characters`);
  return {
    payee: to.payee,
    payeeAccountId: to.payeeAccountId,
    destination: to.destination,
    recipientId: to.recipientId,
    rate,
    caps,
    intervalSeconds: intervalSeconds ?? 1,
    minPaymentMsat: minPaymentMsat ?? DEFAULT_MIN_PAYMENT_MSAT,
    prefundMsat,
    memo,
  };
}
