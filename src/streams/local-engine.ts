import { randomUUID } from 'node:crypto';
import { msat, ZERO_MSAT } from '../domain/msat.js';
import { LedgerError, LedgerErrorCode } from '../ledger/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf } from '../ledger/types.js';
import { accruedMsat, capReached, chunkMsat } from './accrual.js';
import { StreamError, StreamErrorCode } from './errors.js';
import { encodeStream } from './codec.js';
import { newChunk, type StreamModel } from './model.js';
import type { StreamPayments } from './ports.js';
import { stopSignalOf, type StopSignal } from './stop-signal.js';

/** Nothing was due (or nothing new accrued). */
export const IDLE = 0;
/** Money moved. */
export const PAID = 1;
export type SettleOutcome = typeof IDLE | typeof PAID | StopSignal;

const noop = (): void => undefined;

/** A fixed per-stream share in per mille, below `max`, read from the stream id (a UUID). */
export function staggerOf(streamId: string, max: number): bigint {
  return BigInt(parseInt(streamId.slice(0, 8), 16) % max);
}

const isGone = (err: unknown): boolean =>
  err instanceof LedgerError &&
  (err.code === LedgerErrorCode.TRANSFER_NOT_PENDING || err.code === LedgerErrorCode.TRANSFER_NOT_FOUND);

/**
 * Intra-gateway streams: money moves from a prepaid chunk (a pending ledger transfer payer →
 * payee, code 'stream') by `ledger.advance`, the stream's record riding in the same batch.
 * Everything here is synchronous: a tick over all streams lands in one group-commit batch.
 */
export class LocalEngine {
  /** The durability of the latest change this engine applied (later ones resolve after earlier ones). */
  lastDurable: Promise<void> | undefined;

  /**
   * @param staggerPermille Up to this much (per mille) is cut from a stream's first chunk, by its
   *   id: streams started together then run out of chunks on different ticks, and the policy
   *   checks and reservations of their rollovers spread over many ticks instead of one.
   */
  constructor(
    private readonly ledger: Ledger,
    private readonly payments: Pick<StreamPayments, 'authorizeSpend'>,
    private readonly chunkSeconds: number,
    private readonly staggerPermille = 0,
  ) {}

  /**
   * Pays what is due after `activeMs` of active time. The common case is one advance carrying the
   * record; a chunk running out, a cap, or a refusal take the slow path. Returns a stop signal
   * when the stream must stop (the caller stops it in the same tick).
   */
  settle(s: StreamModel, activeMs: number, t: number): SettleOutcome {
    const secs = Math.floor(activeMs / 1000);
    if (secs === s.lastSecs && s.units === s.lastUnits) return IDLE;
    s.lastSecs = secs;
    s.lastUnits = s.units;
    const accrued = accruedMsat(s.rate, s.caps, secs, s.units);
    const due = accrued - s.paid;
    const capped =
      s.ceiling !== undefined || s.caps.maxDurationSeconds !== undefined
        ? capReached(s.rate, s.caps, secs, accrued, s.ceiling)
        : false;
    if (due <= 0n) return capped ? { reason: 'cap_reached' } : IDLE;
    const c = s.chunk;
    const advanced = c === undefined ? due : c.advanced + due;
    if (!capped && c !== undefined && advanced <= c.amount) {
      c.advanced = advanced;
      s.paid += due;
      s.updatedAt = t;
      s.slot[0]!.value = encodeStream(s, activeMs);
      try {
        this.track(this.ledger.advance(c.id, msat(due), s.slot).durable);
      } catch (err) {
        c.advanced -= due;
        s.paid -= due;
        if (!isGone(err)) throw err;
        // The chunk was settled behind the stream's back: pay from a new one.
        s.chunk = undefined;
        return this.settleSlowly(s, due, capped, activeMs, t);
      }
      return PAID;
    }
    return this.settleSlowly(s, due, capped, activeMs, t);
  }

  /**
   * Reserves the stream's next chunk: policy check and pending transfer in one synchronous step.
   * At least `atLeast`, at most what the caps allow and what the payer has. Throws when refused.
   * `fresh`: the first chunk of a (re)started stream, staggered.
   */
  openChunk(s: StreamModel, atLeast: bigint, fresh = false): void {
    const payee = s.payeeAccountId!;
    let size = chunkMsat(s.rate, s.caps, s.paid, atLeast, this.chunkSeconds, s.prefundMsat);
    if (fresh && this.staggerPermille > 0) {
      const cut = (size * staggerOf(s.id, this.staggerPermille)) / 1000n;
      if (size - cut >= atLeast && size - cut >= 1n) size -= cut;
    }
    // Resident: the payer is being streamed from (a pending chunk) or was just ensured.
    const payer = this.ledger.accountNow(s.payerAccountId);
    if (!payer) throw new LedgerError(LedgerErrorCode.ACCOUNT_NOT_FOUND, `no account ${s.payerAccountId}`);
    const available = availableOf(payer);
    // Spend what there is rather than stop early; less than is due fails below, on funds.
    if (size > available && available >= atLeast && available > 0n) size = available;
    if (size <= 0n)
      throw new StreamError(StreamErrorCode.STREAM_STOPPED, 'nothing more can accrue under the caps');
    const amount = msat(size);
    this.payments.authorizeSpend(s.payerAccountId, {
      kind: 'stream',
      amountMsat: amount,
      feeLimitMsat: ZERO_MSAT,
      payee: { accountId: payee },
    });
    const id = randomUUID();
    this.track(
      this.ledger.transfer({
        id,
        debitAccountId: s.payerAccountId,
        creditAccountId: payee,
        amount,
        code: 'stream',
        memo: `stream ${s.id}`,
        pending: true,
      }).durable,
    );
    s.chunk = newChunk(id, size);
  }

  /** Ends the open chunk: what moved stays posted, the rest returns to the payer. */
  closeChunk(s: StreamModel, why: string): void {
    const c = s.chunk;
    if (c === undefined) return;
    s.chunk = undefined;
    const t = this.ledger.getTransferSync(c.id);
    if (t?.state === 'pending') this.track(this.ledger.void(c.id, why).durable);
  }

  /** Writes the stream's record now (it joins the batch of whatever was applied this tick). */
  write(s: StreamModel, activeMs: number): Promise<void> {
    s.slot[0]!.value = encodeStream(s, activeMs);
    const durable = this.ledger.putRecords(s.slot);
    this.track(durable);
    return durable;
  }

  private settleSlowly(
    s: StreamModel,
    due: bigint,
    capped: boolean,
    activeMs: number,
    t: number,
  ): SettleOutcome {
    let stop: StopSignal | undefined;
    let rest = due;
    try {
      while (rest > 0n) {
        let c = s.chunk;
        if (c === undefined || c.advanced === c.amount) {
          if (c !== undefined) {
            s.chunk = undefined;
            this.track(this.ledger.post(c.id).durable);
          }
          this.openChunk(s, rest);
          c = s.chunk!;
        }
        const room = c.amount - c.advanced;
        const step = rest < room ? rest : room;
        this.track(this.ledger.advance(c.id, msat(step)).durable);
        c.advanced += step;
        s.paid += step;
        rest -= step;
      }
    } catch (err) {
      stop = stopSignalOf(err);
    }
    s.updatedAt = t;
    if (stop === undefined && capped) stop = { reason: 'cap_reached' };
    // A stopping stream's record is written by the stop, with its final state.
    if (stop !== undefined) return stop;
    this.write(s, activeMs);
    return PAID;
  }

  private track(durable: Promise<void>): void {
    // Failures surface through the ledger's fatal event; nothing here may become unhandled.
    durable.catch(noop);
    this.lastDurable = durable;
  }
}
