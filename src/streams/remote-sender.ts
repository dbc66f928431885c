import { msat } from '../domain/msat.js';
import { LedgerError } from '../ledger/errors.js';
import type { Payment } from '../payments/types.js';
import { PolicyDeniedError } from '../policy/errors.js';
import { PaymentError } from '../payments/errors.js';
import { accruedMsat, activeSecondsAt, capReached } from './accrual.js';
import type { SendIntent, StreamModel } from './model.js';
import type { Logger, StreamPayments } from './ports.js';
import { streamRecords } from './records.js';
import { isRetryableDenial, stopSignalOf, type StopSignal } from './stop-signal.js';

/** What the sender asks of the service. */
export interface SenderHooks {
  /** Persists the stream's record (not awaited: the group commit orders it before later sends). */
  write(s: StreamModel, t: number): void;
  /** Stops a stream (state change, record, event). */
  stop(s: StreamModel, signal: StopSignal, t: number): void;
  now(): number;
}

const FINAL_FAILURES = new Set<Payment['status']>(['failed', 'denied', 'expired']);

/** The idempotency key of a stream payment: a retry or a restart sends the same payment, once. */
export const sendKey = (streamId: string, seq: number): string => `stream:${streamId}:${seq}`;

/**
 * Inter-node streams: every interval, one keysend of what is due (at least the minimum; less
 * carries over), never two at once per stream. A payment counts as paid once it succeeded or is
 * pending (unknown); a pending one that later fails is owed again. Each send is fixed as an
 * intent (seq, amount) in the stream's record before it goes out, with an idempotency key: if
 * the outcome is lost (crash, unexpected error), the same intent is sent again and the payments
 * service answers with the payment that already exists.
 */
export class RemoteSender {
  private closed = false;

  constructor(
    private readonly payments: StreamPayments,
    private readonly hooks: SenderHooks,
    private readonly log: Logger,
    private readonly maxFailures: number,
  ) {}

  /** After shutdown, late outcomes change memory only; the intents in the records redo them. */
  close(): void {
    this.closed = true;
  }

  /** Visits every remote stream with work left; drops the ones that have none. */
  tick(t: number, streams: Set<StreamModel>): void {
    for (const s of streams) {
      if (s.sending) continue;
      if (s.inFlight.length > 0) this.poll(s, t);
      const secs = activeSecondsAt(s.activeMsBefore, s.activeSince, t);
      const accrued = accruedMsat(s.rate, s.caps, secs, s.units);
      if (s.state === 'active' && capReached(s.rate, s.caps, secs, accrued, s.ceiling))
        this.hooks.stop(s, { reason: 'cap_reached' }, t);
      if (s.state === 'stopped' && !s.drain && s.intent === undefined) {
        if (s.inFlight.length === 0) streams.delete(s);
        continue;
      }
      if (!s.drain && t < s.nextSendAt) continue;
      s.nextSendAt = t + s.intervalSeconds * 1000;
      if (s.intent !== undefined) {
        this.send(s, s.intent, s.drain);
        continue;
      }
      const due = accrued - s.paid;
      if (due <= 0n || (!s.drain && due < s.minPaymentMsat)) {
        if (s.drain) {
          s.drain = false;
          this.hooks.write(s, t);
        }
        continue;
      }
      s.seq += 1;
      s.intent = { seq: s.seq, amount: due, total: s.paid + due, activeSeconds: secs };
      this.hooks.write(s, t);
      this.send(s, s.intent, s.drain);
    }
  }

  /** `last`: the stopped stream's final payment (a stop arriving meanwhile asks for another). */
  private send(s: StreamModel, intent: SendIntent, last: boolean): void {
    s.sending = true;
    void this.payments
      .keysend(s.payerAccountId, {
        destination: s.destination!,
        amountMsat: msat(intent.amount),
        records: streamRecords({
          streamId: s.id,
          seq: intent.seq,
          ...(s.recipientId !== undefined ? { recipientId: s.recipientId } : {}),
          valueMsat: intent.amount,
          totalMsat: intent.total,
          activeSeconds: intent.activeSeconds,
        }),
        idempotencyKey: sendKey(s.id, intent.seq),
      })
      .then(
        (p) => this.sent(s, intent, p, last),
        (err: unknown) => this.refused(s, intent, err, last),
      )
      .catch((err: unknown) => this.log.error({ err, streamId: s.id }, 'stream send bookkeeping failed'))
      .finally(() => {
        s.sending = false;
      });
  }

  private sent(s: StreamModel, intent: SendIntent, p: Payment, last: boolean): void {
    s.intent = undefined;
    if (p.status === 'succeeded') {
      s.paid += intent.amount;
      s.failures = 0;
    } else if (FINAL_FAILURES.has(p.status)) {
      s.failures += 1;
      this.log.warn({ streamId: s.id, seq: intent.seq, reason: p.failureReason }, 'stream payment failed');
    } else {
      // pending (unknown) or awaiting approval: counted now, owed again if it fails later.
      s.paid += intent.amount;
      s.inFlight.push({ paymentId: p.id, amount: intent.amount });
      s.failures = 0;
    }
    if (p.status === 'awaiting_approval' && s.state !== 'stopped' && !this.closed) {
      // A stream cannot wait for an operator every interval: this payment waits, the stream stops.
      s.drain = false;
      return this.hooks.stop(
        s,
        { reason: 'policy_denied', code: 'NEEDS_APPROVAL', message: 'stream payments need approval' },
        this.hooks.now(),
      );
    }
    this.after(s, p.failureReason ?? 'PAYMENT_FAILED', last);
  }

  private refused(s: StreamModel, intent: SendIntent, err: unknown, last: boolean): void {
    const definite =
      err instanceof PolicyDeniedError || err instanceof LedgerError || err instanceof PaymentError;
    if (!definite) {
      // Maybe sent: keep the intent, the next attempt replays it under the same idempotency key.
      s.failures += 1;
      this.log.warn({ err, streamId: s.id, seq: intent.seq }, 'stream payment outcome unknown; will retry');
      return this.after(s, 'INTERNAL', false);
    }
    // Refused before anything was sent: the sequence number was not used.
    s.intent = undefined;
    if (s.seq === intent.seq) s.seq -= 1;
    if (isRetryableDenial(err)) return this.after(s, 'RETRY', last);
    if (this.closed) return;
    const t = this.hooks.now();
    s.drain = false;
    if (s.state !== 'stopped') this.hooks.stop(s, stopSignalOf(err), t);
    else this.hooks.write(s, t);
  }

  private after(s: StreamModel, code: string, last: boolean): void {
    if (this.closed) return;
    const t = this.hooks.now();
    if (last) s.drain = false;
    if (s.failures >= this.maxFailures) {
      if (s.state !== 'stopped') {
        s.drain = false;
        return this.hooks.stop(
          s,
          { reason: 'payment_failed', code, message: `${s.failures} stream payments failed in a row` },
          t,
        );
      }
      if (s.intent !== undefined) {
        // A stopped stream does not retry forever: if that payment did go out, it is not counted.
        this.log.error({ streamId: s.id, seq: s.intent.seq }, 'gave up on an unconfirmed stream payment');
        s.intent = undefined;
        s.drain = false;
      }
    }
    this.hooks.write(s, t);
  }

  /** Follows payments whose outcome was unknown: a failure makes their amount owed again. */
  private poll(s: StreamModel, t: number): void {
    let changed = false;
    for (let i = s.inFlight.length - 1; i >= 0; i--) {
      const f = s.inFlight[i]!;
      const status = this.payments.getPayment(f.paymentId)?.status;
      if (status === 'succeeded') {
        s.inFlight.splice(i, 1);
        changed = true;
      } else if (status !== undefined && FINAL_FAILURES.has(status)) {
        s.paid -= f.amount;
        s.inFlight.splice(i, 1);
        changed = true;
      }
    }
    if (changed) this.hooks.write(s, t);
  }
}
