/**
 * Migration 5: account leases, and the ledger's commit function fenced by them (version 2 of
 * `coulomb_ledger_commit`, which it replaces).
 *
 * An instance validates a debit (balance, frozen flag, budgets and per-minute rates from the
 * account's spend buckets, idempotency keys) against its memory, synchronously. With several
 * instances that memory is only authoritative while the instance holds the account's lease: a
 * row naming it as holder with an epoch (from one sequence: never reused, so a lease lost and
 * taken again is a new epoch). Every batch that debits an account names the epoch it held when
 * the debit was validated; the commit refuses the whole batch (LEASE_LOST) unless each such lease
 * is still held by the writer under that epoch. The lease rows are locked (FOR SHARE) first, so a
 * takeover waits for a batch in flight and then reads what it wrote.
 *
 * The function keeps an account's name and frozen flag as the database has them unless the batch
 * creates the account or changes its frozen flag (`a_meta`): an instance's memory of an account
 * it does not hold may be stale, and its account write must not undo another's freeze.
 *
 * Lock order, the same in every batch: leases, accounts, transfers, each in id order. Sets of ids
 * are joined (`IN (SELECT unnest(...))`), never searched as arrays row by row: with thousands of
 * transfers in a batch, `id = ANY (array) OR ...` over every account row was most of a batch's time.
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

CREATE FUNCTION coulomb_ledger_commit_v2(
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
  changed bigint;
BEGIN
  -- 1. The fence: each lease the batch's debits were validated under is still the writer's.
  PERFORM 1 FROM ledger_leases WHERE account_id IN (SELECT unnest(f_account)) ORDER BY account_id FOR SHARE;
  SELECT f.acct INTO bad FROM unnest(f_account, f_epoch) AS f(acct, epoch)
    LEFT JOIN ledger_leases l ON l.account_id = f.acct
    WHERE l.holder IS DISTINCT FROM f_holder OR l.epoch IS DISTINCT FROM f.epoch LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'the lease on account % is no longer held by this instance', bad.acct
      USING ERRCODE = 'P0001', HINT = 'LEASE_LOST';
  END IF;

  -- 2. Lock every account the batch touches, then the transfers it changes that exist already,
  -- each in id order (a set joined, not an array searched per row). Each later statement reads
  -- them afresh (READ COMMITTED takes a new snapshot per statement): the latest committed rows.
  PERFORM 1 FROM ledger_accounts
    WHERE id IN (SELECT unnest(a_id) UNION SELECT unnest(t_debit) UNION SELECT unnest(t_credit))
    ORDER BY id FOR UPDATE;
  PERFORM 1 FROM ledger_transfers WHERE id IN (SELECT unnest(t_id)) ORDER BY id FOR UPDATE;

  -- A transfer the batch creates must not exist (another instance made it).
  SELECT n.id INTO bad FROM unnest(t_id, t_new) AS n(id, is_new) JOIN ledger_transfers o ON o.id = n.id
    WHERE n.is_new LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'transfer % exists', bad.id USING ERRCODE = 'P0001', HINT = 'TRANSFER_EXISTS';
  END IF;
  -- Final transfers stay final; a pending one only goes forward; its parties never change.
  SELECT n.id, o.state INTO bad
    FROM unnest(t_id, t_state, t_amount, t_advanced, t_debit, t_credit)
      AS n(id, state, amount, advanced, debit, credit)
    JOIN ledger_transfers o ON o.id = n.id
    WHERE (o.state <> 'pending' AND (n.state <> o.state OR n.amount <> o.amount))
       OR (o.state = 'pending' AND n.state = 'pending' AND coalesce(n.advanced, 0) < coalesce(o.advanced, 0))
       OR n.debit <> o.debit_account_id OR n.credit <> o.credit_account_id
    LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'transfer % is % already', bad.id, bad.state USING ERRCODE = 'P0001',
      HINT = 'TRANSFER_NOT_PENDING';
  END IF;

  -- Create the new accounts (balances 0); an existing one takes the batch's spend buckets (only
  -- its lease holder sends them), and its name and frozen flag only from the write that changes
  -- them (another instance's memory of them may be stale).
  INSERT INTO ledger_accounts (id, kind, name, allow_negative, frozen, created_at, spend)
    SELECT * FROM unnest(a_id, a_kind, a_name, a_allow_negative, a_frozen, a_created_at, a_spend)
    ON CONFLICT (id) DO NOTHING;

  -- 3. Move the balances by what the transfers' contributions changed, and take the batch's
  -- account fields: one new row version per account per batch.
  UPDATE ledger_accounts a SET
      debits_posted = a.debits_posted + coalesce(x.debits_posted, 0),
      debits_pending = a.debits_pending + coalesce(x.debits_pending, 0),
      credits_posted = a.credits_posted + coalesce(x.credits_posted, 0),
      credits_pending = a.credits_pending + coalesce(x.credits_pending, 0),
      name = CASE WHEN x.meta THEN x.name ELSE a.name END,
      frozen = CASE WHEN x.meta THEN x.frozen ELSE a.frozen END,
      spend = coalesce(x.spend, a.spend)
    FROM (SELECT coalesce(m.id, d.acct) AS id, m.name, m.frozen, m.spend, coalesce(m.meta, false) AS meta,
        d.debits_posted, d.debits_pending, d.credits_posted, d.credits_pending
      FROM unnest(a_id, a_name, a_frozen, a_spend, a_meta) AS m(id, name, frozen, spend, meta)
      FULL JOIN (
      SELECT acct,
        coalesce(sum(dp) FILTER (WHERE side = 'd'), 0) AS debits_posted,
        coalesce(sum(dq) FILTER (WHERE side = 'd'), 0) AS debits_pending,
        coalesce(sum(dp) FILTER (WHERE side = 'c'), 0) AS credits_posted,
        coalesce(sum(dq) FILTER (WHERE side = 'c'), 0) AS credits_pending
      FROM (
        SELECT n.debit AS d_acct, n.credit AS c_acct,
          (CASE n.state WHEN 'posted' THEN n.amount WHEN 'pending' THEN coalesce(n.advanced, 0) ELSE 0 END)
          - coalesce(CASE o.state WHEN 'posted' THEN o.amount WHEN 'pending' THEN coalesce(o.advanced, 0) ELSE 0 END, 0) AS dp,
          (CASE n.state WHEN 'pending' THEN n.amount - coalesce(n.advanced, 0) ELSE 0 END)
          - coalesce(CASE o.state WHEN 'pending' THEN o.amount - coalesce(o.advanced, 0) ELSE 0 END, 0) AS dq
        FROM unnest(t_id, t_new, t_debit, t_credit, t_amount, t_state, t_advanced)
          AS n(id, is_new, debit, credit, amount, state, advanced)
        LEFT JOIN ledger_transfers o ON o.id = n.id AND NOT n.is_new
      ) c
      CROSS JOIN LATERAL (VALUES ('d', c.d_acct), ('c', c.c_acct)) AS s(side, acct)
      GROUP BY acct
    ) d ON d.acct = m.id) x
    WHERE a.id = x.id AND (x.meta OR x.spend IS NOT NULL OR x.debits_posted <> 0 OR x.debits_pending <> 0
      OR x.credits_posted <> 0 OR x.credits_pending <> 0);

  -- 4. The transfers themselves: the new ones inserted (none exists: checked above), the others
  -- updated.
  INSERT INTO ledger_transfers
    SELECT id, debit, credit, amount, state, code, memo, key, advanced, spent_at, timeout_at, created_at,
        resolved_at
      FROM unnest(t_id, t_new, t_debit, t_credit, t_amount, t_state, t_code, t_memo, t_key, t_advanced,
        t_spent_at, t_timeout_at, t_created_at, t_resolved_at)
        AS n(id, is_new, debit, credit, amount, state, code, memo, key, advanced, spent_at, timeout_at,
          created_at, resolved_at)
      WHERE is_new;
  UPDATE ledger_transfers t SET amount = n.amount, state = n.state, advanced = n.advanced,
      spent_at = n.spent_at, resolved_at = n.resolved_at
    FROM unnest(t_id, t_new, t_amount, t_state, t_advanced, t_spent_at, t_resolved_at)
      AS n(id, is_new, amount, state, advanced, spent_at, resolved_at)
    WHERE t.id = n.id AND NOT n.is_new;
  GET DIAGNOSTICS changed = ROW_COUNT;
  IF changed <> (SELECT count(*) FROM unnest(t_new) AS n(is_new) WHERE NOT is_new) THEN
    RAISE EXCEPTION 'a transfer the batch changes does not exist' USING ERRCODE = 'P0001',
      HINT = 'TRANSFER_NOT_FOUND';
  END IF;

  -- 5. Idempotency keys: one transfer per key while the key counts (k_retention ms).
  INSERT INTO ledger_keys AS k (key, transfer_id, fingerprint, at)
    SELECT * FROM unnest(k_key, k_transfer, k_fingerprint, k_at)
    ON CONFLICT (key) DO UPDATE SET transfer_id = EXCLUDED.transfer_id,
      fingerprint = EXCLUDED.fingerprint, at = EXCLUDED.at
      WHERE k.transfer_id = EXCLUDED.transfer_id OR k.at < EXCLUDED.at - k_retention;
  SELECT n.key INTO bad FROM unnest(k_key, k_transfer) AS n(key, transfer)
    JOIN ledger_keys k ON k.key = n.key WHERE k.transfer_id <> n.transfer LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'idempotency key % names another transfer', bad.key USING ERRCODE = 'P0001',
      HINT = 'IDEMPOTENCY_CONFLICT';
  END IF;
  DELETE FROM ledger_keys k USING unnest(x_key, x_at, x_keep) AS x(key, at, keep)
    WHERE k.key = x.key AND k.at = x.at AND NOT x.keep;

  -- 6. Journal (seq from the database) and its per-account index.
  WITH ins AS (
    INSERT INTO ledger_journal (at, type, account_ids, transfer_id, amount, detail)
      SELECT j.at, j.type, array_remove(ARRAY[j.a1, CASE WHEN j.a2 IS DISTINCT FROM j.a1 THEN j.a2 END], NULL),
        j.transfer, j.amount, j.detail
      FROM unnest(j_at, j_type, j_acct1, j_acct2, j_transfer, j_amount, j_detail)
        AS j(at, type, a1, a2, transfer, amount, detail)
      RETURNING seq, account_ids
  )
  -- (An entry's accounts are distinct, as built above: no DISTINCT needed.)
  INSERT INTO ledger_journal_accounts (account_id, seq)
    SELECT acct, ins.seq FROM ins, unnest(ins.account_ids) AS acct;

  -- 7. Side records (null value: delete).
  DELETE FROM ledger_records r USING unnest(r_key, r_value) AS x(key, value)
    WHERE r.key = x.key AND x.value IS NULL;
  INSERT INTO ledger_records (key, value)
    SELECT key, value FROM unnest(r_key, r_value) AS x(key, value) WHERE value IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
END
$$;

-- The version 2 function is replaced by the one above (nothing calls it any more).
DROP FUNCTION coulomb_ledger_commit(text[], text[], text[], boolean[], boolean[], bigint[], text[],
  text[], boolean[], text[], text[], numeric[], text[], text[], text[], text[], numeric[], bigint[],
  bigint[], bigint[], bigint[], text[], text[], text[], bigint[], bigint, text[], bigint[], boolean[],
  bigint[], text[], text[], text[], text[], text[], text[], text[], text[]);
`;
