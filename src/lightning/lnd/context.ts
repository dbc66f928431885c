import type { AuthenticatedLnd } from 'lightning';

/** What every LND operation needs: an authenticated ln-service handle. */
export interface LndContext {
  readonly lnd: AuthenticatedLnd;
}
