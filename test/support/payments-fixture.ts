import { ApiKeys } from '../../src/auth/api-keys.js';
import { buildApp, type CoulombApp } from '../../src/http/app.js';
import type { AccountServices } from '../../src/http/routes/services.js';
import type { PaidServicesAdmin } from '../../src/http/routes/paid-services.js';
import { OperatorAuth } from '../../src/http/operator-auth.js';
import { msat } from '../../src/domain/msat.js';
import { Ledger } from '../../src/ledger/ledger.js';
import { AuditLog } from '../../src/policy/audit.js';
import { PolicyRegistry } from '../../src/policy/registry.js';
import type { Policy } from '../../src/policy/types.js';
import { EventBus } from '../../src/payments/events.js';
import { OPERATOR_ACCOUNT } from '../../src/ledger/system-accounts.js';
import { PaymentsService, type PaymentsOptions } from '../../src/payments/service.js';
import { FakeLightning } from './fake-lightning.js';
import { MemoryLedgerStore } from './memory-ledger-store.js';

export const silentLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A payments service over a fake Lightning backend and an in-memory ledger store. */
export async function paymentsFixture(
  options: PaymentsOptions = {},
  store = new MemoryLedgerStore(),
  lightning = new FakeLightning(),
) {
  const ledger = await Ledger.open(store, options.now ? { now: options.now } : {});
  const policies = new PolicyRegistry(ledger, { keep: (id) => ledger.hasPending(id) });
  const audit = new AuditLog(ledger);
  const events = new EventBus();
  const service = new PaymentsService(ledger, lightning, policies, audit, events, silentLog, {
    reconcileIntervalMs: 3600_000,
    ...options,
  });
  await service.start();
  const account = async (
    id: string,
    fundMsat: bigint,
    policy: Policy = { rules: [{ type: 'max_in_flight', max: 1000 }] },
  ) => {
    if (!(await ledger.getAccount(id))) await ledger.createAccount({ id, kind: 'agent', name: id }).durable;
    if (fundMsat > 0n)
      await ledger.transfer({
        debitAccountId: OPERATOR_ACCOUNT,
        creditAccountId: id,
        amount: msat(fundMsat),
        code: 'funding',
      }).durable;
    await policies.set(id, policy);
  };
  return { ledger, policies, audit, events, service, lightning, store, account };
}

/** The HTTP app over a payments fixture, with the given operator key. */
export async function accountsApp(
  f: Awaited<ReturnType<typeof paymentsFixture>>,
  operatorKey: string,
  /** Feature services to mount too (escrow, market, streams...). */
  extra: Partial<AccountServices> = {},
  /** The paid-services admin API to mount (it needs `extra.l402`). */
  paidServices?: PaidServicesAdmin,
): Promise<CoulombApp> {
  return buildApp({
    ...(paidServices ? { paidServices } : {}),
    backend: f.lightning,
    operatorAuth: OperatorAuth.fromKey(operatorKey),
    accounts: {
      ledger: f.ledger,
      payments: f.service,
      policies: f.policies,
      audit: f.audit,
      apiKeys: new ApiKeys(f.ledger),
      events: f.events,
      ...extra,
    },
  });
}
