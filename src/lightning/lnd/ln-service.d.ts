// ln-service ships no typings of its own; it re-exports the `lightning` package, which does,
// plus a few helpers from `invoices` that we type here.
declare module 'ln-service' {
  export * from 'lightning';

  /** Offline BOLT11 decoding (checksum and signature checked); throws on a malformed request. */
  export function parsePaymentRequest(args: { request: string }): {
    cltv_delta: number;
    created_at: string;
    description?: string;
    description_hash?: string;
    destination: string;
    expires_at: string;
    id: string;
    is_expired: boolean;
    mtokens?: string;
    network: string;
    payment?: string;
    tokens: number;
  };
}
