import { useEffect, useState } from 'preact/hooks';
import { get, put } from './api.js';
import { Err, useAction } from './ui.js';

/** The fields of each rule type of a spending policy (src/policy/types.ts), as the editor shows them. */
const RULES: Record<string, { field: string; label: string; kind: 'msat' | 'int' | 'list' | 'window' }[]> = {
  no_spending: [],
  max_per_payment: [{ field: 'maxMsat', label: 'cap per payment (msat)', kind: 'msat' }],
  budget: [
    { field: 'window', label: 'window', kind: 'window' },
    { field: 'maxMsat', label: 'budget (msat)', kind: 'msat' },
  ],
  max_share_of_balance: [{ field: 'basisPoints', label: 'share of balance (basis points)', kind: 'int' }],
  min_reserve: [{ field: 'minMsat', label: 'reserve kept (msat)', kind: 'msat' }],
  payee_allowlist: [
    { field: 'pubkeys', label: 'node pubkeys', kind: 'list' },
    { field: 'domains', label: 'domains', kind: 'list' },
  ],
  payee_denylist: [
    { field: 'pubkeys', label: 'node pubkeys', kind: 'list' },
    { field: 'domains', label: 'domains', kind: 'list' },
  ],
  max_in_flight: [{ field: 'max', label: 'payments in flight', kind: 'int' }],
  max_per_minute: [{ field: 'max', label: 'payments per minute', kind: 'int' }],
  approval_above: [{ field: 'thresholdMsat', label: 'approval above (msat)', kind: 'msat' }],
};
const WINDOWS = ['hour', 'day', 'week', 'month'];

type Rule = { type: string } & Record<string, unknown>;
/** A rule being edited: its type and each field as typed. */
type Draft = { type: string; values: Record<string, string> };

const toDraft = (r: Rule): Draft => ({
  type: r.type,
  values: Object.fromEntries(
    (RULES[r.type] ?? []).map(({ field }) => {
      const v = r[field];
      return [field, Array.isArray(v) ? v.join(' ') : v === undefined ? '' : String(v)];
    }),
  ),
});

/**
 * The rule as the API takes it: amounts stay decimal strings, counts become numbers when they are
 * digits (anything else goes as typed, and the gateway's validation error is shown).
 */
function toRule(d: Draft): Rule {
  const rule: Rule = { type: d.type };
  for (const { field, kind } of RULES[d.type] ?? []) {
    const v = (d.values[field] ?? '').trim();
    if (kind === 'list') {
      const items = v.split(/[\s,]+/).filter((x) => x !== '');
      if (items.length > 0) rule[field] = items;
    } else if (kind === 'int') rule[field] = /^\d+$/.test(v) ? Number(v) : v;
    else rule[field] = kind === 'window' && v === '' ? 'day' : v;
  }
  return rule;
}

/** An account's spending policy, rule by rule: caps, budgets, allowlists, approval thresholds. */
export function Rules({ id, onSaved }: { id: string; onSaved: () => void }) {
  const [drafts, setDrafts] = useState<Draft[]>([]);
  const [tier, setTier] = useState<string>();
  const [saved, setSaved] = useState(false);
  const [error, run] = useAction();
  const path = `/v1/accounts/${encodeURIComponent(id)}/policy`;
  const show = (p: { tier?: string; rules: Rule[] }) => {
    setTier(p.tier);
    setDrafts(p.rules.map(toDraft));
  };
  useEffect(() => {
    setSaved(false);
    void run(async () => show(await get<{ tier?: string; rules: Rule[] }>(path)));
  }, [id]);
  const change = (i: number, d: Draft) => {
    setSaved(false);
    setDrafts(drafts.map((x, j) => (j === i ? d : x)));
  };
  return (
    <div class="rules">
      <h4>Spending rules {tier ? `(from tier ${tier})` : ''}</h4>
      <p class="hint">Checked in order; the first deny wins; no rules: no spending.</p>
      {drafts.map((d, i) => (
        <div class="row rule" data-rule={i}>
          <select
            name={`rule-${i}-type`}
            value={d.type}
            onChange={(e) => change(i, toDraft({ type: e.currentTarget.value }))}
          >
            {Object.keys(RULES).map((t) => (
              <option>{t}</option>
            ))}
          </select>
          {(RULES[d.type] ?? []).map(({ field, label, kind }) =>
            kind === 'window' ? (
              <select
                name={`rule-${i}-${field}`}
                value={d.values[field] || 'day'}
                onChange={(e) => change(i, { ...d, values: { ...d.values, [field]: e.currentTarget.value } })}
              >
                {WINDOWS.map((w) => (
                  <option>{w}</option>
                ))}
              </select>
            ) : (
              <input
                name={`rule-${i}-${field}`}
                placeholder={label}
                title={label}
                inputMode={kind === 'list' ? 'text' : 'numeric'}
                value={d.values[field] ?? ''}
                onInput={(e) => change(i, { ...d, values: { ...d.values, [field]: e.currentTarget.value } })}
              />
            ),
          )}
          <button onClick={() => (setSaved(false), setDrafts(drafts.filter((_, j) => j !== i)))}>
            Remove
          </button>
        </div>
      ))}
      <div class="row">
        <button
          onClick={() => (setSaved(false), setDrafts([...drafts, toDraft({ type: 'max_per_payment' })]))}
        >
          Add rule
        </button>
        <button
          onClick={() =>
            void run(async () => {
              setSaved(false);
              show(await put<{ tier?: string; rules: Rule[] }>(path, { rules: drafts.map(toRule) }));
              setSaved(true);
              onSaved();
            })
          }
        >
          Save rules
        </button>
        {saved && <span class="notice">saved</span>}
      </div>
      <Err error={error} />
    </div>
  );
}
