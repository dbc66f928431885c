import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { msat } from '../../domain/msat.js';
import { tierPolicy } from '../../policy/tiers.js';
import type { Policy, PolicyRule } from '../../policy/types.js';
import { jsonSafe } from '../json.js';
import { AuditEntryBody, ErrorResponses, IdParams, PolicyRuleBody, Tier } from '../schemas.js';
import type { AccountServices } from './services.js';

const PolicyBody = Type.Object(
  { tier: Type.Optional(Tier), rules: Type.Array(PolicyRuleBody) },
  { additionalProperties: false },
);

function toRule(r: Static<typeof PolicyRuleBody>): PolicyRule {
  const out: Record<string, unknown> = { ...r };
  for (const f of ['maxMsat', 'minMsat', 'thresholdMsat'])
    if (typeof out[f] === 'string') out[f] = msat(out[f] as string);
  return out as unknown as PolicyRule;
}

/** Spending policy: a trust tier (L0..L3) or explicit ordered rules; set by the operator only. */
export const policyRoutes: FastifyPluginAsyncTypebox<AccountServices> = async (app, s) => {
  app.get(
    '/v1/accounts/:id/policy',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['policy'],
        params: IdParams,
        response: { 200: PolicyBody, ...ErrorResponses },
      },
    },
    async (req) => {
      await s.ledger.requireAccount(req.params.id);
      return jsonSafe((await s.policies.find(req.params.id)) ?? { rules: [] });
    },
  );

  app.put(
    '/v1/accounts/:id/policy',
    {
      schema: {
        tags: ['policy'],
        description:
          'Either { "tier": "L0"|"L1"|"L2"|"L3" } or { "rules": [...] } (ordered; first deny wins; no rules = deny).',
        security: [{ operator: [] }],
        params: IdParams,
        body: Type.Union([
          Type.Object({ tier: Tier }, { additionalProperties: false }),
          Type.Object(
            { rules: Type.Array(PolicyRuleBody, { maxItems: 50 }) },
            { additionalProperties: false },
          ),
        ]),
        response: { 200: PolicyBody, ...ErrorResponses },
      },
    },
    async (req) => {
      await s.ledger.requireAccount(req.params.id);
      // Under the account's lease (a shared store): the instance spending from it hands it over,
      // and reads the new policy when it takes the lease back.
      await s.ledger.ensure({ spend: [req.params.id] });
      const policy: Policy =
        'tier' in req.body ? tierPolicy(req.body.tier, s.tiers) : { rules: req.body.rules.map(toRule) };
      return jsonSafe(await s.policies.set(req.params.id, policy));
    },
  );

  app.get(
    '/v1/accounts/:id/audit',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['policy'],
        description: 'Every policy decision for the account, newest first.',
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })) }),
        response: {
          200: Type.Object({ entries: Type.Array(AuditEntryBody) }, { additionalProperties: false }),
          ...ErrorResponses,
        },
      },
    },
    async (req) => {
      await s.ledger.requireAccount(req.params.id);
      await s.ledger.flush();
      return { entries: await s.audit.query(req.params.id, { limit: req.query.limit ?? 50 }) };
    },
  );
};
