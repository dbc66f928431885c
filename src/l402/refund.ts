import { AppError } from '../domain/errors.js';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { msat, type Msat } from '../domain/msat.js';
import type { Ledger } from '../ledger/ledger.js';
import { availableOf } from '../ledger/types.js';
import type { Policy } from '../policy/types.js';

/** Where the unused credit of a closed credential goes. */
export type RefundDestination =
  { kind: 'invoice'; invoice: string; maxFeeMsat: Msat } | { kind: 'account'; accountId: string };

/** What a close answers (and a repeated close answers again). */
export interface RefundResult {
  /** The credential's ledger account (`l402:<token id>` or `mpp:<session id>`). */
  accountId: string;
  refundMsat: Msat;
  /** `pending`: the Lightning payment's outcome is not known yet (it is tracked). */
  status: 'succeeded' | 'failed' | 'pending' | 'skipped';
  destination: 'invoice' | 'account';
  paymentId?: string;
  transferId?: string;
  feeMsat?: Msat;
  /**
   * The part of the fee reserve (`maxFeeMsat`, taken out of the refund) the succeeded payment
   * did not use: it stays in the closed credential account (an amountless invoice cannot be paid
   * twice), stated here so nobody mistakes it for lost.
   */
  unusedFeeReserveMsat?: Msat;
  closedAt: number;
}

/** What refunds need of the payments service (the one path money leaves an account by). */
export interface RefundPayments {
  pay(
    accountId: string,
    input: { request: string; amountMsat?: Msat; maxFeeMsat?: Msat; idempotencyKey?: string },
  ): Promise<{ id: string; status: string; feeMsat?: Msat }>;
  transfer(
    fromAccountId: string,
    toAccountId: string,
    amount: Msat,
    memo: string,
    idempotencyKey?: string,
  ): Promise<{ transferId: string; replayed: boolean }>;
}

/** Reads an invoice offline (the gateway's LightningBackend). */
export interface RefundInvoices {
  decodeInvoice(request: string): Promise<{ amountMsat: Msat; isExpired: boolean; network: string }>;
}

export interface RefundPolicies {
  set(accountId: string, policy: Policy): Promise<Policy>;
}

export class RefundError extends AppError {
  constructor(
    code: 'CREDENTIAL_BUSY' | 'REFUND_DESTINATION_INVALID' | 'CREDENTIAL_NOT_FOUND',
    message: string,
  ) {
    super(code, message, code === 'CREDENTIAL_BUSY' ? 409 : code === 'CREDENTIAL_NOT_FOUND' ? 404 : 400);
  }
}

/** The metered reservations of the proxy (pending until their usage is billed). */
const USAGE = 'l402_usage';
/** The idempotency key, on the credential's account, of its one refund. */
const REFUND_KEY = 'credential-close';
const PREFIX = 'credclose!';

interface CloseRecord {
  destination: RefundDestination['kind'];
  invoice?: string;
  accountId?: string;
  maxFeeMsat?: string;
  refundMsat: string;
  closedAt: number;
}

/**
 * Closes prepaid credentials (an L402 credential's account, an MPP session's) and gives back
 * their unused credit, exactly once. The caller has already made the credential refused for new
 * requests (revoked, or the session marked closed); then, one close at a time per credential:
 * its charges not yet written are flushed and its metered reservations in flight are waited for;
 * the amount (what is available then) and destination are written as the close record
 * (`credclose!<account>`); the money leaves through the payments service (a Lightning payment
 * tracked like every other, or a transfer to a gateway account) under the ledger idempotency
 * key `credential-close` of the credential's account, so a repeated or interrupted close
 * replays the one refund and never makes a second.
 */
export class CreditRefunds {
  private readonly queue = new KeyedQueue();

  constructor(
    private readonly ledger: Ledger,
    private readonly payments: RefundPayments,
    private readonly policies: RefundPolicies,
    private readonly invoices: RefundInvoices,
    private readonly options: { drainTimeoutMs?: number; now?: () => number } = {},
  ) {}

  /** The close of a credential account, if it was closed (its refund as it stands now). */
  async closed(accountId: string): Promise<CloseRecord | undefined> {
    const raw = await this.ledger.getRecord(PREFIX + accountId);
    return raw === undefined ? undefined : (JSON.parse(raw) as CloseRecord);
  }

  /**
   * Closes the credential account and refunds its unused credit to `destination`; a second
   * call answers the first close's refund (with its current status), whatever destination it
   * names. `flushCharges` makes the proxy's unwritten charges of this account durable.
   */
  close(
    accountId: string,
    destination: RefundDestination,
    flushCharges: () => Promise<void> = () => Promise.resolve(),
  ): Promise<RefundResult> {
    return this.queue.run(accountId, () => this.closeNow(accountId, destination, flushCharges));
  }

  /** Runs `fn` alone for this credential account (closes included). */
  exclusive<T>(accountId: string, fn: () => Promise<T>): Promise<T> {
    return this.queue.run(accountId, fn);
  }

  /** `close` for a caller already inside `exclusive(accountId, …)`. */
  async closeNow(
    accountId: string,
    destination: RefundDestination,
    flushCharges: () => Promise<void> = () => Promise.resolve(),
  ): Promise<RefundResult> {
    let rec = await this.closed(accountId);
    if (!rec) {
      if (!(await this.ledger.getAccount(accountId)))
        throw new RefundError('CREDENTIAL_NOT_FOUND', 'this credential has no credit on this gateway');
      if (destination.kind === 'account' && !(await this.ledger.getAccount(destination.accountId)))
        throw new RefundError('REFUND_DESTINATION_INVALID', 'the refund account does not exist');
      await flushCharges();
      await this.drain(accountId);
      await this.ledger.ensure({ spend: [accountId] });
      const account = this.ledger.accountNow(accountId)!;
      const fee = destination.kind === 'invoice' ? destination.maxFeeMsat : 0n;
      const available = availableOf(account);
      const refund = available > fee ? available - fee : 0n;
      if (destination.kind === 'invoice') await this.checkInvoice(destination.invoice, refund);
      rec = {
        destination: destination.kind,
        ...(destination.kind === 'invoice'
          ? { invoice: destination.invoice, maxFeeMsat: String(destination.maxFeeMsat) }
          : { accountId: destination.accountId }),
        refundMsat: String(refund),
        closedAt: (this.options.now ?? Date.now)(),
      };
      await this.ledger.putRecords([{ key: PREFIX + accountId, value: JSON.stringify(rec) }]);
    }
    return this.refund(accountId, rec);
  }

  /** Sends (or replays) the refund a close record names. */
  private async refund(accountId: string, rec: CloseRecord): Promise<RefundResult> {
    const amount = msat(rec.refundMsat);
    const base = { accountId, refundMsat: amount, destination: rec.destination, closedAt: rec.closedAt };
    if (amount === 0n) return { ...base, status: 'skipped' };
    const fee = msat(rec.maxFeeMsat ?? '0');
    // The credential's own policy allows this one refund and nothing else: no key exists for a
    // credential account, so nothing else can spend from it anyway.
    await this.policies.set(accountId, {
      rules: [
        { type: 'max_per_payment', maxMsat: msat(amount + fee) },
        { type: 'max_in_flight', max: 1 },
      ],
    });
    if (rec.destination === 'account') {
      const t = await this.payments.transfer(
        accountId,
        rec.accountId!,
        amount,
        'refund of unused credit',
        REFUND_KEY,
      );
      return { ...base, status: 'succeeded', transferId: t.transferId };
    }
    const p = await this.payments.pay(accountId, {
      request: rec.invoice!,
      amountMsat: amount,
      maxFeeMsat: fee,
      idempotencyKey: REFUND_KEY,
    });
    const status = p.status === 'succeeded' ? 'succeeded' : p.status === 'failed' ? 'failed' : 'pending';
    const unused =
      status === 'succeeded' && p.feeMsat !== undefined && fee > p.feeMsat ? fee - p.feeMsat : 0n;
    return {
      ...base,
      status,
      paymentId: p.id,
      ...(p.feeMsat !== undefined ? { feeMsat: p.feeMsat } : {}),
      ...(unused > 0n ? { unusedFeeReserveMsat: msat(unused) } : {}),
    };
  }

  /** An invoice the refund can pay: unexpired, and without an amount or of exactly the refund. */
  private async checkInvoice(invoice: string, refund: bigint): Promise<void> {
    let decoded;
    try {
      decoded = await this.invoices.decodeInvoice(invoice);
    } catch {
      throw new RefundError('REFUND_DESTINATION_INVALID', 'the refund invoice is not a valid BOLT11 invoice');
    }
    if (decoded.isExpired)
      throw new RefundError('REFUND_DESTINATION_INVALID', 'the refund invoice has expired');
    if (refund > 0n && decoded.amountMsat !== 0n && decoded.amountMsat !== refund)
      throw new RefundError(
        'REFUND_DESTINATION_INVALID',
        `the refund is ${refund} msat: present an invoice without an amount, or of exactly that amount`,
      );
  }

  /** Waits until the account has no metered reservation in flight (bounded). */
  private async drain(accountId: string): Promise<void> {
    const deadline = Date.now() + (this.options.drainTimeoutMs ?? 30_000);
    for (;;) {
      const busy = this.ledger
        .pendingTransfers()
        .some((t) => t.code === USAGE && t.debitAccountId === accountId);
      if (!busy) return;
      if (Date.now() > deadline)
        throw new RefundError(
          'CREDENTIAL_BUSY',
          'a request of this credential is still being served; close it again when it ends',
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The reason recorded on the revocation of a credential its holder closed. */
export const HOLDER_CLOSE_REASON = 'closed by its holder (refund of unused credit)';

/**
 * Closes an L402 credential for its holder, authenticated by the credential itself (`L402
 * <macaroon>:<preimage>` valid for `service`): revoked first (no new request is admitted), then
 * refunded by `CreditRefunds.close`. A credential its holder already closed is still recognised
 * (revoked with `HOLDER_CLOSE_REASON`), so a repeated close answers the first close's refund.
 */
export async function closeL402Credential(
  deps: {
    authority: {
      verify(
        header: string | undefined,
        service: string,
      ): { ok: true; tokenId: string } | { ok: false; failure: string; message: string };
      tokenIdOf(credential: string): string | undefined;
    };
    revocations: {
      revoke(target: { tokenId: string }, reason?: string): Promise<{ reason?: string }>;
      get(tokenId: string): Promise<{ reason?: string } | undefined>;
    };
    refunds: CreditRefunds;
  },
  authorization: string | undefined,
  service: string,
  destination: RefundDestination,
  flushCharges?: () => Promise<void>,
): Promise<RefundResult> {
  const v = deps.authority.verify(authorization, service);
  // A revoked credential is still named (its signature and preimage were checked before its
  // revocation was): it may be one its holder closed, whose close answers again.
  const tokenId = v.ok
    ? v.tokenId
    : v.failure === 'REVOKED' && authorization
      ? deps.authority.tokenIdOf(authorization)
      : undefined;
  if (!tokenId) throw new AppError('INVALID_CREDENTIAL', v.ok ? 'invalid credential' : v.message, 401);
  const accountId = `l402:${tokenId}`;
  // One at a time per credential: a concurrent close waits for this one's revocation and record.
  return deps.refunds.exclusive(accountId, async () => {
    const closed = await deps.refunds.closed(accountId);
    if (!v.ok && !closed && (await deps.revocations.get(tokenId))?.reason !== HOLDER_CLOSE_REASON)
      throw new AppError('CREDENTIAL_REVOKED', 'this credential was revoked', 401);
    if (!closed) {
      // Refused from this moment (the revocation is in memory before it is written). Revoking
      // answers a revocation already stored: on a shared store another instance may have revoked
      // the credential since this one last read it, and a revoked credential is not refunded.
      const revocation = await deps.revocations.revoke({ tokenId }, HOLDER_CLOSE_REASON);
      if (revocation.reason !== HOLDER_CLOSE_REASON)
        throw new AppError('CREDENTIAL_REVOKED', 'this credential was revoked', 401);
    }
    return deps.refunds.closeNow(accountId, destination, flushCharges);
  });
}
