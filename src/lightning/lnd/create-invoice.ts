import { createHash, randomBytes } from 'node:crypto';
import type { CreateInvoiceArgs, Invoice } from '../types.js';
import type { LndContext } from './context.js';
import { assertInvoiceAmount, assertInvoiceDescription } from '../limits.js';
import { lndCall } from './map-error.js';
import { bolt11Fields } from './bolt11-fields.js';
import { msat } from '../../domain/msat.js';

export const DEFAULT_INVOICE_EXPIRY_SECONDS = 3600;

export function expiresAt(expirySeconds: number | undefined): string {
  return new Date(Date.now() + (expirySeconds ?? DEFAULT_INVOICE_EXPIRY_SECONDS) * 1000).toISOString();
}

/** LND's AddInvoice, as much of it as is used here. */
interface AddInvoiceRpc {
  addInvoice(
    req: { memo: string; value_msat: string; expiry: number; r_preimage: Buffer },
    cb: (err: unknown, res?: { payment_request?: string }) => void,
  ): void;
}

/**
 * One round trip: LND's AddInvoice with a preimage chosen here, so the payment hash is its sha256
 * and nothing needs asking again (ln-service's `createInvoice` adds a lookup of the new invoice
 * and decodes the request twice, each time recovering the node key from the signature: most of a
 * challenge's CPU). The rest (creation time, expiry, CLTV delta) is read from the request's
 * fields, which our own LND just signed.
 */
export async function createInvoice(ctx: LndContext, args: CreateInvoiceArgs): Promise<Invoice> {
  assertInvoiceAmount(args.amountMsat);
  assertInvoiceDescription(args.description);
  const preimage = randomBytes(32);
  const rpc = ctx.lnd.default as AddInvoiceRpc;
  const request = await lndCall(
    'createInvoice',
    () =>
      new Promise<string>((resolve, reject) =>
        rpc.addInvoice(
          {
            memo: args.description ?? '',
            value_msat: args.amountMsat.toString(),
            expiry: args.expirySeconds ?? DEFAULT_INVOICE_EXPIRY_SECONDS,
            r_preimage: preimage,
          },
          (err, res) => {
            // The same failures ln-service reports, so they map to the same codes.
            if (err) return reject([503, 'AddInvoiceError', { err }]);
            if (!res?.payment_request) return reject([503, 'ExpectedPaymentRequestForCreatedInvoice']);
            resolve(res.payment_request);
          },
        ),
      ),
  );
  const fields = bolt11Fields(request);
  return {
    paymentHash: createHash('sha256').update(preimage).digest('hex'),
    preimage: preimage.toString('hex'),
    request,
    description: args.description ?? '',
    amountMsat: args.amountMsat,
    receivedMsat: msat(0),
    state: 'open',
    isKeysend: false,
    createdAt: fields.createdAt,
    expiresAt: fields.expiresAt,
    cltvDelta: fields.cltvDelta,
    // LND's add index is not used from here (as before: 0).
    addIndex: 0,
    settleIndex: 0,
    htlcs: [],
  };
}
