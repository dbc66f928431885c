import { msat, type Msat } from '../domain/msat.js';
import type { Account } from '../ledger/types.js';
import { balanceOf } from '../ledger/types.js';
import { creditService, credentialAccountId, type CredentialInvoices } from './gate.js';
import type { L402Revocations } from './revocations.js';

const ACCOUNT_PREFIX = credentialAccountId('');

export interface CredentialSummary {
  tokenId: string;
  /** The service it was sold for (from its challenge's record; unknown for older credentials). */
  service?: string;
  /** Credit left. */
  balanceMsat: Msat;
  /** When its first credit was booked (unix ms). */
  createdAt: number;
  revoked: boolean;
  revokedAt?: number;
}

export interface CredentialSources {
  ledger: { listAccounts(options: { after?: string; limit: number }): Promise<Account[]> };
  revocations: Pick<L402Revocations, 'isRevoked' | 'get'>;
  invoices: Pick<CredentialInvoices, 'listInvoices'>;
}

/**
 * The paid L402 credentials (each is the ledger account its credit was booked to, `l402:<token
 * id>`), in token id order, a page at a time from disk: pass `next` as `after` for the next page.
 */
export async function listCredentials(
  sources: CredentialSources,
  options: { limit: number; after?: string },
): Promise<{ credentials: CredentialSummary[]; next?: string }> {
  const accounts = await sources.ledger.listAccounts({
    after: ACCOUNT_PREFIX + (options.after ?? ''),
    limit: options.limit + 1,
  });
  const mine = accounts.filter((a) => a.id.startsWith(ACCOUNT_PREFIX));
  const page = mine.slice(0, options.limit);
  const credentials = await Promise.all(
    page.map(async (a): Promise<CredentialSummary> => {
      const tokenId = a.id.slice(ACCOUNT_PREFIX.length);
      // A shared store: a revocation another instance made is read (once per bound).
      const revoked = await sources.revocations.isRevoked(tokenId);
      const [{ invoices }, revocation] = await Promise.all([
        sources.invoices.listInvoices(a.id, { limit: 1 }),
        revoked ? sources.revocations.get(tokenId) : Promise.resolve(undefined),
      ]);
      const service = creditService(invoices[0]?.description);
      return {
        tokenId,
        ...(service ? { service } : {}),
        balanceMsat: msat(balanceOf(a)),
        createdAt: a.createdAt,
        revoked,
        ...(revocation ? { revokedAt: revocation.revokedAt } : {}),
      };
    }),
  );
  return mine.length > options.limit
    ? { credentials, next: credentials[credentials.length - 1]!.tokenId }
    : { credentials };
}
