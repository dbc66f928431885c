import {
  WINDOWS,
  type Decision,
  type DenialCode,
  type Policy,
  type PolicyRule,
  type RuleResult,
  type SpendContext,
  type SpendRequest,
} from './types.js';

interface Verdict {
  outcome: 'allow' | 'deny' | 'needs_approval';
  code?: DenialCode;
  reason?: string;
  retryAfterMs?: number;
}

const allow: Verdict = { outcome: 'allow' };
const deny = (code: DenialCode, reason: string, retryAfterMs?: number): Verdict => ({
  outcome: 'deny',
  code,
  reason,
  ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
});

/** The result of a rule that allows: one frozen object per rule type, shared by every decision. */
const allowedResults = new Map<PolicyRule['type'], RuleResult>();
function allowedBy(rule: PolicyRule['type']): RuleResult {
  let r = allowedResults.get(rule);
  if (r === undefined) {
    r = Object.freeze({ rule, outcome: 'allow' as const });
    allowedResults.set(rule, r);
  }
  return r;
}

const resultOf = (rule: PolicyRule['type'], v: Verdict): RuleResult => ({
  rule,
  outcome: v.outcome,
  ...(v.reason ? { reason: v.reason } : {}),
});

function matchesPayee(
  list: { pubkeys?: string[]; domains?: string[] },
  payee: SpendRequest['payee'],
): boolean {
  const pk = payee.pubkey?.toLowerCase();
  const domain = payee.domain?.toLowerCase();
  return (
    (pk !== undefined && (list.pubkeys ?? []).some((p) => p.toLowerCase() === pk)) ||
    (domain !== undefined && (list.domains ?? []).some((d) => domainMatches(d.toLowerCase(), domain)))
  );
}

/** `example.com` matches itself and its subdomains; `*.example.com` only subdomains. */
function domainMatches(pattern: string, domain: string): boolean {
  if (pattern.startsWith('*.')) return domain.endsWith(pattern.slice(1));
  return domain === pattern || domain.endsWith(`.${pattern}`);
}

function evaluateRule(rule: PolicyRule, req: SpendRequest, ctx: SpendContext): Verdict {
  const total = req.amountMsat + req.feeLimitMsat;
  switch (rule.type) {
    case 'no_spending':
      return deny('SPENDING_DISABLED', 'this account may not spend (view-only tier)');
    case 'max_per_payment':
      return total > rule.maxMsat
        ? deny(
            'PAYMENT_CAP_EXCEEDED',
            `amount plus fee limit ${total} exceeds the per-payment cap ${rule.maxMsat} msat`,
          )
        : allow;
    case 'budget': {
      const windowMs = WINDOWS[rule.window];
      const spent = ctx.spentSince(ctx.now - windowMs);
      return spent + total > rule.maxMsat
        ? deny(
            'QUOTA_EXCEEDED',
            `the ${rule.window} budget of ${rule.maxMsat} msat has ${rule.maxMsat > spent ? rule.maxMsat - spent : 0n} msat left, ${total} requested`,
          )
        : allow;
    }
    case 'max_share_of_balance': {
      const cap = (ctx.availableMsat * BigInt(rule.basisPoints)) / 10_000n;
      return total > cap
        ? deny(
            'BALANCE_SHARE_EXCEEDED',
            `a payment may use at most ${rule.basisPoints / 100}% of the balance (${cap} msat)`,
          )
        : allow;
    }
    case 'min_reserve':
      return ctx.availableMsat - total < rule.minMsat
        ? deny('RESERVE_REQUIRED', `the account must keep at least ${rule.minMsat} msat`)
        : allow;
    case 'payee_allowlist':
      return matchesPayee(rule, req.payee)
        ? allow
        : deny('PAYEE_RESTRICTED', 'the payee is not on the allowlist');
    case 'payee_denylist':
      return matchesPayee(rule, req.payee) ? deny('PAYEE_RESTRICTED', 'the payee is on the denylist') : allow;
    case 'max_in_flight':
      return ctx.inFlight >= rule.max
        ? deny('TOO_MANY_IN_FLIGHT', `at most ${rule.max} payments may be in flight`, 1000)
        : allow;
    case 'max_per_minute':
      return ctx.countSince(ctx.now - 60_000) >= rule.max
        ? deny('RATE_LIMITED', `at most ${rule.max} payments per minute`, 60_000)
        : allow;
    case 'approval_above':
      return total > rule.thresholdMsat && !ctx.approved
        ? {
            outcome: 'needs_approval',
            code: 'NEEDS_APPROVAL',
            reason: `payments above ${rule.thresholdMsat} msat need an operator's approval`,
          }
        : allow;
  }
}

/**
 * Evaluates an account's policy for one spend. Rules run in order; the first deny wins; a
 * needs-approval result holds unless a later rule denies; no policy at all denies.
 */
export function evaluate(policy: Policy | undefined, req: SpendRequest, ctx: SpendContext): Decision {
  const evaluated: RuleResult[] = [];
  if (ctx.frozen) {
    evaluated.push({ rule: 'frozen', outcome: 'deny', reason: 'account is frozen' });
    return { outcome: 'deny', code: 'ACCOUNT_FROZEN', reason: 'the account is frozen', evaluated };
  }
  if (!policy || policy.rules.length === 0) {
    evaluated.push({ rule: 'policy', outcome: 'deny', reason: 'no policy' });
    return {
      outcome: 'deny',
      code: 'NO_POLICY',
      reason: 'the account has no spending policy (deny by default)',
      evaluated,
    };
  }
  let approval: Verdict | undefined;
  for (const rule of policy.rules) {
    const v = evaluateRule(rule, req, ctx);
    evaluated.push(v === allow ? allowedBy(rule.type) : resultOf(rule.type, v));
    if (v.outcome === 'deny')
      return {
        outcome: 'deny',
        code: v.code!,
        reason: v.reason!,
        evaluated,
        ...(v.retryAfterMs !== undefined ? { retryAfterMs: v.retryAfterMs } : {}),
      };
    if (v.outcome === 'needs_approval') approval ??= v;
  }
  if (approval)
    return { outcome: 'needs_approval', code: 'NEEDS_APPROVAL', reason: approval.reason!, evaluated };
  return { outcome: 'allow', evaluated };
}
