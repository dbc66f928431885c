import { LightningError, LightningErrorCode } from '../errors.js';

/** ln-service rejects with tuples `[status, 'Name', details]`; gRPC errors carry a numeric `code`. */
type LnServiceErrorTuple = [number, string, unknown?];

const BY_NAME: Record<string, LightningErrorCode> = {
  InvoiceWithGivenHashAlreadyExists: LightningErrorCode.INVOICE_EXISTS,
  SecretDoesNotMatchAnyExistingHodlInvoice: LightningErrorCode.INVOICE_NOT_FOUND,
  CannotSettleHtlcBeforeHtlcReceived: LightningErrorCode.HOLD_NOT_ACCEPTED,
  SentPaymentNotFound: LightningErrorCode.NOT_FOUND,
  UnsupportedPaymentFeatureInPayRequest: LightningErrorCode.UNSUPPORTED,
};

/**
 * What each code tells the caller, in our words: LND's own text is never the explanation (it is
 * internal, changes between versions, and may say more than a client should know). It stays on
 * the error as its `cause`, which the log shows.
 */
const EXPLANATION: Record<LightningErrorCode, string> = {
  LN_UNAVAILABLE: 'the Lightning node is not reachable',
  LN_PERMISSION_DENIED: 'the gateway is not permitted this call on the Lightning node',
  LN_NOT_FOUND: 'the Lightning node does not know it',
  LN_INVOICE_NOT_FOUND: 'no invoice with this payment hash',
  LN_INVOICE_EXISTS: 'an invoice with this payment hash already exists',
  LN_INVOICE_AMOUNT_TOO_LARGE: 'the invoice amount is above the largest the Lightning node accepts',
  LN_INVALID_REQUEST: 'the payment request is not valid',
  LN_INVALID_ARGUMENT: 'the Lightning node refused the arguments',
  LN_HOLD_INVOICE_NOT_ACCEPTED: 'the hold invoice holds no payment yet',
  LN_HOLD_INVOICE_INVALID_STATE: 'the hold invoice is already settled or canceled',
  LN_UNSUPPORTED: 'the Lightning node does not support this',
  LN_INTERNAL: 'the Lightning node failed unexpectedly',
};

/** LND's texts for client mistakes (invoices/errors.go, lnrpc/invoicesrpc/addinvoice.go). */
const DUPLICATE_HASH = /invoice with (that )?payment hash already exists|invoice already exists/i;
const AMOUNT_TOO_LARGE =
  /invoice amount .* is too large, max is|payment of .* is too large, max payment allowed/i;

const GRPC_UNAVAILABLE =
  /failed to connect|UNAVAILABLE|ECONNREFUSED|No connection established|Connection dropped|14 UNAVAILABLE/i;

function isTuple(value: unknown): value is LnServiceErrorTuple {
  return Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string';
}

/** A short description of the underlying gRPC error, never including credentials. */
export function detailsOf(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (value && typeof value === 'object') {
    const rec = value as Record<string, unknown>;
    if (typeof rec['details'] === 'string') return rec['details'];
    if (rec['err'] !== undefined) return detailsOf(rec['err']);
    if (typeof rec['message'] === 'string') return rec['message'];
  }
  return typeof value === 'string' ? value : '';
}

/** Maps anything ln-service or gRPC throws to a LightningError with a stable code. */
export function toLightningError(err: unknown, operation: string): LightningError {
  if (err instanceof LightningError) return err;
  if (isTuple(err)) {
    const [status, name, raw] = err;
    const details = detailsOf(raw);
    const text = `${name} ${details}`;
    const known = BY_NAME[name];
    let code: LightningErrorCode;
    if (known) code = known;
    else if (/unable to locate invoice|there are no existing invoices/i.test(details))
      code = LightningErrorCode.INVOICE_NOT_FOUND;
    else if (DUPLICATE_HASH.test(details)) code = LightningErrorCode.INVOICE_EXISTS;
    else if (AMOUNT_TOO_LARGE.test(details)) code = LightningErrorCode.INVOICE_AMOUNT_TOO_LARGE;
    else if (/memo too large|description too long/i.test(details)) code = LightningErrorCode.INVALID_ARGUMENT;
    else if (/invoice still open|htlc not accepted/i.test(details))
      code = LightningErrorCode.HOLD_NOT_ACCEPTED;
    else if (/invoice already (canceled|settled)|cannot (cancel|settle)/i.test(details))
      code = LightningErrorCode.HOLD_INVALID_STATE;
    else if (/permission denied|verification failed|macaroon/i.test(text))
      code = LightningErrorCode.PERMISSION_DENIED;
    else if (GRPC_UNAVAILABLE.test(text) || /Connection|Unavailable|Offline/i.test(name))
      code = LightningErrorCode.UNAVAILABLE;
    else if (status === 404) code = LightningErrorCode.NOT_FOUND;
    else if (status >= 400 && status < 500) code = LightningErrorCode.INVALID_ARGUMENT;
    else code = LightningErrorCode.INTERNAL;
    return withCause(new LightningError(code, `${operation}: ${EXPLANATION[code]}`, { lnd: name }), text);
  }
  const details = detailsOf(err);
  const code = GRPC_UNAVAILABLE.test(details) ? LightningErrorCode.UNAVAILABLE : LightningErrorCode.INTERNAL;
  return withCause(
    new LightningError(code, `${operation}: ${EXPLANATION[code]}`),
    details || 'unknown error',
  );
}

/** Keeps LND's text for the log (pino prints causes), out of what the client is sent. */
function withCause(err: LightningError, text: string): LightningError {
  err.cause = new Error(text.trim());
  return err;
}

/** Runs an ln-service call and converts its failure into a LightningError. */
export async function lndCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toLightningError(err, operation);
  }
}
