import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { LightningBackend } from '../../lightning/backend.js';
import type { Ledger } from '../../ledger/ledger.js';
import type { PaymentsService } from '../../payments/service.js';
import { ErrorResponses, literals } from '../schemas.js';

const AlertBody = Type.Object(
  {
    code: literals(['COVERAGE_LOW', 'LND_DISCONNECTED', 'ACCOUNTS_FROZEN', 'APPROVALS_WAITING']),
    severity: literals(['critical', 'warning']),
    message: Type.String(),
    count: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { $id: 'Alert', additionalProperties: false },
);
type Alert = Static<typeof AlertBody>;

const AlertsBody = Type.Object(
  {
    alerts: Type.Array(AlertBody),
    lightning: literals(['connected', 'disconnected']),
    coverage: Type.Optional(
      Type.String({ description: 'node funds over liabilities; absent while LND cannot be asked' }),
    ),
    frozenAccounts: Type.Integer({ minimum: 0 }),
    approvalsWaiting: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);

/**
 * What needs the operator now: coverage below 1, LND unreachable, frozen accounts, approvals
 * waiting. Each figure is read from an index or from memory, never by scanning accounts.
 */
export const alertRoutes: FastifyPluginAsyncTypebox<{
  backend: LightningBackend;
  ledger: Ledger;
  payments: PaymentsService;
}> = async (app, { backend, ledger, payments }) => {
  app.get(
    '/v1/alerts',
    {
      schema: {
        tags: ['operations'],
        security: [{ operator: [] }],
        response: { 200: AlertsBody, ...ErrorResponses },
      },
    },
    async () => {
      const alerts: Alert[] = [];
      const lightning = backend.connectionState;
      if (lightning !== 'connected')
        alerts.push({
          code: 'LND_DISCONNECTED',
          severity: 'critical',
          message: 'LND is not reachable: payments wait until it is back',
        });
      // The node's balances come from LND: without it there is no coverage to tell.
      const coverage =
        lightning === 'connected'
          ? (await payments.liabilities().catch(() => undefined))?.coverage
          : undefined;
      if (coverage !== undefined && coverage !== 'inf' && Number(coverage) < 1)
        alerts.push({
          code: 'COVERAGE_LOW',
          severity: 'critical',
          message: `coverage ${coverage}: the node holds less than it owes to accounts`,
        });
      const frozenAccounts = await ledger.countFrozen();
      if (frozenAccounts > 0)
        alerts.push({
          code: 'ACCOUNTS_FROZEN',
          severity: 'warning',
          message: `${frozenAccounts} account${frozenAccounts === 1 ? ' is' : 's are'} frozen`,
          count: frozenAccounts,
        });
      const approvalsWaiting = payments.waitingApprovals();
      if (approvalsWaiting > 0)
        alerts.push({
          code: 'APPROVALS_WAITING',
          severity: 'warning',
          message: `${approvalsWaiting} payment${approvalsWaiting === 1 ? ' waits' : 's wait'} for approval`,
          count: approvalsWaiting,
        });
      return {
        alerts,
        lightning,
        ...(coverage !== undefined ? { coverage } : {}),
        frozenAccounts,
        approvalsWaiting,
      };
    },
  );
};
