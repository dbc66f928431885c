import { createHash, randomBytes } from 'node:crypto';
import { subscribeToPayViaDetails } from 'ln-service';
import { isPubkey } from '../../domain/hex.js';
import { LightningError, LightningErrorCode } from '../errors.js';
import { customRecordsProblem, KEYSEND_PREIMAGE_TLV } from '../records.js';
import type { KeysendArgs, PaymentOutcome, TlvRecord } from '../types.js';
import { awaitPayment } from './await-payment.js';
import type { LndContext } from './context.js';
import { confirmNotSent, DEFAULT_PATHFINDING_TIMEOUT_MS } from './pay-invoice.js';

export function validateRecords(records: readonly TlvRecord[]): void {
  const problem = customRecordsProblem(records);
  if (problem !== undefined) throw new LightningError(LightningErrorCode.INVALID_ARGUMENT, problem);
}

/** Spontaneous payment: we choose the preimage and send it to the payee in TLV 5482373484. */
export async function keysend(ctx: LndContext, args: KeysendArgs): Promise<PaymentOutcome> {
  if (!isPubkey(args.destination)) {
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      'destination must be a 33-byte compressed public key in hex',
    );
  }
  if (args.amountMsat <= 0n)
    throw new LightningError(LightningErrorCode.INVALID_ARGUMENT, 'amountMsat must be positive');
  const records = args.records ?? [];
  validateRecords(records);
  if (args.preimage !== undefined && !/^[0-9a-f]{64}$/.test(args.preimage)) {
    throw new LightningError(
      LightningErrorCode.INVALID_ARGUMENT,
      'preimage must be 64 lowercase hex characters',
    );
  }
  // Callers that must record the hash before sending pass their own preimage.
  const preimage = args.preimage !== undefined ? Buffer.from(args.preimage, 'hex') : randomBytes(32);
  const paymentHash = createHash('sha256').update(preimage).digest('hex');
  const sub = subscribeToPayViaDetails({
    lnd: ctx.lnd,
    destination: args.destination,
    id: paymentHash,
    mtokens: args.amountMsat.toString(),
    max_fee_mtokens: args.maxFeeMsat.toString(),
    pathfinding_timeout: args.pathfindingTimeoutMs ?? DEFAULT_PATHFINDING_TIMEOUT_MS,
    messages: [
      { type: KEYSEND_PREIMAGE_TLV.toString(), value: preimage.toString('hex') },
      ...records.map((r) => ({ type: r.type.toString(), value: r.value })),
    ],
  });
  return awaitPayment(sub, paymentHash, args.timeoutMs, (o) => confirmNotSent(ctx, o));
}
