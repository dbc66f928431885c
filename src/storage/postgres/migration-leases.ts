/**
 * Migration 5: account leases, and the commit function that is fenced by them.
 *
 * An instance validates a debit (balance, frozen flag, budgets and per-minute rates from the
 * account's spend buckets, idempotency keys) against its memory, synchronously. With several
 * instances on one database that memory is only authoritative while the instance holds the
 * account's lease: a row naming it as holder with an epoch (from one sequence: never reused, so a
 * lease lost and taken again is a new epoch). Every batch that debits an account names the epoch
 * it held when the debit was validated; the commit refuses the whole batch (LEASE_LOST) unless
 * each such lease is still held by the writer under that epoch. The lease rows are locked (FOR
 * SHARE) first, so a takeover waits for a batch in flight and then reads what it wrote.
 *
 * The same function keeps an account's name and frozen flag as the database has them unless the
 * batch creates the account or changes its frozen flag (`a_meta`): an instance's memory of an
 * account it does not hold may be stale, and its account write must not undo another's freeze.
 *
 * Lock order, the same in every batch: leases, then accounts, then transfers (the version 2
 * function then locks accounts again, which this transaction already holds).
 */
export const ACCOUNT_LEASES = `
CREATE SEQUENCE ledger_lease_epoch;
CREATE TABLE ledger_leases (
  account_id text COLLATE "C" PRIMARY KEY,
  holder text NOT NULL,
  epoch bigint NOT NULL,
  expires_at timestamptz NOT NULL,
  -- Another instance asked for the lease since its holder took it: the holder hands it over once
  -- its writes on the account are durable.
  wanted_at timestamptz
);
-- A holder's leases asked for (polled by every holder several times a second).
CREATE INDEX ledger_leases_wanted ON ledger_leases (holder) WHERE wanted_at IS NOT NULL;

CREATE FUNCTION coulomb_ledger_commit_fenced(
  f_holder text, f_account text[], f_epoch bigint[], a_meta boolean[],
  a_id text[], a_kind text[], a_name text[], a_allow_negative boolean[], a_frozen boolean[],
  a_created_at bigint[], a_spend text[],
  t_id text[], t_new boolean[], t_debit text[], t_credit text[], t_amount numeric[], t_state text[],
  t_code text[], t_memo text[], t_key text[], t_advanced numeric[], t_spent_at bigint[],
  t_timeout_at bigint[], t_created_at bigint[], t_resolved_at bigint[],
  k_key text[], k_transfer text[], k_fingerprint text[], k_at bigint[], k_retention bigint,
  x_key text[], x_at bigint[], x_keep boolean[],
  j_at bigint[], j_type text[], j_acct1 text[], j_acct2 text[], j_transfer text[], j_amount text[],
  j_detail text[],
  r_key text[], r_value text[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  bad record;
  names text[];
  frozens boolean[];
BEGIN
  -- 1. The fence: each lease the batch's debits were validated under is still the writer's.
  PERFORM 1 FROM ledger_leases WHERE account_id = ANY (f_account) ORDER BY account_id FOR SHARE;
  SELECT f.acct INTO bad FROM unnest(f_account, f_epoch) AS f(acct, epoch)
    LEFT JOIN ledger_leases l ON l.account_id = f.acct
    WHERE l.holder IS DISTINCT FROM f_holder OR l.epoch IS DISTINCT FROM f.epoch LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'the lease on account % is no longer held by this instance', bad.acct
      USING ERRCODE = 'P0001', HINT = 'LEASE_LOST';
  END IF;

  -- 2. Every account of the batch locked in id order, then name and frozen as stored unless the
  -- batch creates the account or changes its frozen flag.
  PERFORM 1 FROM ledger_accounts
    WHERE id = ANY (a_id) OR id = ANY (t_debit) OR id = ANY (t_credit) ORDER BY id FOR UPDATE;
  SELECT coalesce(array_agg(CASE WHEN m.meta OR o.id IS NULL THEN m.name ELSE o.name END ORDER BY m.ord), '{}'),
         coalesce(array_agg(CASE WHEN m.meta OR o.id IS NULL THEN m.frozen ELSE o.frozen END ORDER BY m.ord), '{}')
    INTO names, frozens
    FROM unnest(a_id, a_name, a_frozen, a_meta) WITH ORDINALITY AS m(id, name, frozen, meta, ord)
    LEFT JOIN ledger_accounts o ON o.id = m.id;

  PERFORM coulomb_ledger_commit(a_id, a_kind, names, a_allow_negative, frozens, a_created_at, a_spend,
    t_id, t_new, t_debit, t_credit, t_amount, t_state, t_code, t_memo, t_key, t_advanced, t_spent_at,
    t_timeout_at, t_created_at, t_resolved_at, k_key, k_transfer, k_fingerprint, k_at, k_retention,
    x_key, x_at, x_keep, j_at, j_type, j_acct1, j_acct2, j_transfer, j_amount, j_detail, r_key, r_value);
END
$$;
`;
