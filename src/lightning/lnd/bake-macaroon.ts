import { grantAccess } from 'ln-service';
import type { LndContext } from './context.js';
import { lndCall } from './map-error.js';

/**
 * Everything the gateway calls, and nothing more: no on-chain sends, no channel or peer
 * management, no signing, no macaroon minting. For an external node:
 *   lncli bakemacaroon info:read invoices:read invoices:write offchain:read offchain:write onchain:read
 */
export const GATEWAY_PERMISSIONS = [
  'info:read',
  'invoices:read',
  'invoices:write',
  'offchain:read',
  'offchain:write',
  'onchain:read',
] as const;

/** Bakes a least-privilege macaroon (base64) from a node handle allowed to mint macaroons. */
export async function bakeGatewayMacaroon({ lnd }: LndContext): Promise<string> {
  const { macaroon } = await lndCall('bakeMacaroon', () =>
    grantAccess({ lnd, permissions: [...GATEWAY_PERMISSIONS] }),
  );
  return macaroon;
}
