// The package's public API.
export {
  createL402Fetch,
  lndPayer,
  accountPayer,
  L402ClientError,
  type L402Payer,
  type L402FetchOptions,
  refundL402,
  type L402RefundResult,
} from './l402/client.js';
export {
  createMppClient,
  type MppClient,
  type MppFetchOptions,
  type MppCloseAnswer,
} from './l402/mpp-client.js';
export { LndBackend } from './lightning/lnd/lnd-backend.js';
export type { LightningBackend } from './lightning/backend.js';
export { msat, type Msat } from './domain/msat.js';
