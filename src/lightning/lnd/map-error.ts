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
    else if (/invoice with that payment hash already exists|invoice already exists/i.test(details))
      code = LightningErrorCode.INVOICE_EXISTS;
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
    return new LightningError(code, `${operation}: ${name}${details ? ` (${details})` : ''}`, { lnd: name });
  }
  const details = detailsOf(err);
  const code = GRPC_UNAVAILABLE.test(details) ? LightningErrorCode.UNAVAILABLE : LightningErrorCode.INTERNAL;
  return new LightningError(code, `${operation}: ${details || 'unknown error'}`);
}

/** Runs an ln-service call and converts its failure into a LightningError. */
export async function lndCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toLightningError(err, operation);
  }
}
