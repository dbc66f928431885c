import type { Sql } from 'postgres';
import { AppError } from '../../domain/errors.js';
import { ACCOUNT_LEASES } from './migration-leases.js';

/**
 * Versioned schema migrations of the PostgreSQL store, applied at start by every instance.
 *
 * Safe when several instances start at once: each migration runs in its own transaction that
 * first takes a transaction-level advisory lock (`pg_advisory_xact_lock`, released at commit or
 * rollback, so a crashed runner never leaves it held), then reads `schema_migrations` and applies
 * the migration only if its version is not there yet. The others wait on the lock, then find the
 * version applied and skip it. DDL is transactional in PostgreSQL: a failed migration leaves
 * nothing behind. Migrations are append-only: never edit one that has shipped, add the next.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The advisory lock key of the runner (any bigint, fixed): 'coulomb' in ASCII. */
export const MIGRATION_LOCK_KEY = 0x636f756c6f6d62n;

export class SchemaTooNewError extends AppError {
  constructor(found: number, known: number) {
    super(
      'DATABASE_SCHEMA_TOO_NEW',
      `the database is at schema version ${found}, newer than this gateway knows (${known}): upgrade the gateway`,
      500,
      { found, known },
    );
  }
}

const LEDGER_V1 = `
CREATE TABLE ledger_accounts (
  id text COLLATE "C" PRIMARY KEY,
  kind text NOT NULL,
  name text NOT NULL,
  allow_negative boolean NOT NULL,
  frozen boolean NOT NULL,
  credits_posted numeric(40, 0) NOT NULL DEFAULT 0,
  debits_posted numeric(40, 0) NOT NULL DEFAULT 0,
  credits_pending numeric(40, 0) NOT NULL DEFAULT 0,
  debits_pending numeric(40, 0) NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  spend text,
  -- No overdraw: what an account can spend (posted balance less pending debits) never goes
  -- below zero, whichever instance wrote the transfers.
  CONSTRAINT ledger_no_overdraw
    CHECK (allow_negative OR credits_posted - debits_posted - debits_pending >= 0),
  -- The balance ceiling (MAX_MSAT, src/domain/msat.ts), counting pending credits; and its floor.
  CONSTRAINT ledger_balance_limit
    CHECK (credits_posted + credits_pending - debits_posted <= 2100000000000000000
       AND credits_posted - debits_posted - debits_pending >= -2100000000000000000)
);

CREATE TABLE ledger_transfers (
  id text COLLATE "C" PRIMARY KEY,
  debit_account_id text COLLATE "C" NOT NULL,
  credit_account_id text COLLATE "C" NOT NULL,
  amount numeric(40, 0) NOT NULL CHECK (amount > 0),
  state text NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
  code text NOT NULL,
  memo text,
  idempotency_key text,
  advanced numeric(40, 0),
  spent_at bigint,
  timeout_at bigint,
  created_at bigint NOT NULL,
  resolved_at bigint,
  CHECK (advanced IS NULL OR (advanced >= 0 AND advanced <= amount))
);
CREATE INDEX ledger_transfers_created ON ledger_transfers (created_at, id);
CREATE INDEX ledger_transfers_pending ON ledger_transfers (id) WHERE state = 'pending';

-- One transfer per ledger idempotency key (within the retention window, see the commit function).
CREATE TABLE ledger_keys (
  key text COLLATE "C" PRIMARY KEY,
  transfer_id text COLLATE "C" NOT NULL,
  fingerprint text NOT NULL,
  at bigint NOT NULL
);
CREATE INDEX ledger_keys_at ON ledger_keys (at, key);

-- The journal: seq is assigned by the database (one order for every instance).
CREATE TABLE ledger_journal (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at bigint NOT NULL,
  type text NOT NULL,
  account_ids text[] NOT NULL,
  transfer_id text,
  amount text,
  detail text
);
CREATE TABLE ledger_journal_accounts (
  account_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  PRIMARY KEY (account_id, seq)
);

-- Side records committed with the money (payments, invoices, policies...): byte order, as LevelDB.
CREATE TABLE ledger_records (
  key text COLLATE "C" PRIMARY KEY,
  value text NOT NULL
);
`;

/**
 * One group-commit batch in one round trip and one transaction. Balances are never taken from
 * the writing instance (its memory may be behind another instance's): each account moves by the
 * change of its transfers' contributions, old row (locked) to new row, so two instances moving
 * one account add up. Row locks are taken in one order (transfers, then accounts, each sorted by
 * id; the caller sorts) against deadlocks. Overdraw and the balance ceiling are CHECK constraints,
 * checked on the final row of the UPDATE.
 */
const LEDGER_COMMIT_FN = `
CREATE FUNCTION coulomb_ledger_commit(
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
BEGIN
  -- 1. Lock the transfers the batch changes that exist already, in id order. Each later statement
  -- reads them afresh (READ COMMITTED takes a new snapshot per statement): the latest committed rows.
  PERFORM 1 FROM ledger_transfers WHERE id = ANY (t_id) ORDER BY id FOR UPDATE;

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

  -- 2. Lock every account the batch touches, in id order; create the new ones (balances 0).
  PERFORM 1 FROM ledger_accounts
    WHERE id = ANY (a_id) OR id = ANY (t_debit) OR id = ANY (t_credit) ORDER BY id FOR UPDATE;
  INSERT INTO ledger_accounts AS a (id, kind, name, allow_negative, frozen, created_at, spend)
    SELECT * FROM unnest(a_id, a_kind, a_name, a_allow_negative, a_frozen, a_created_at, a_spend)
    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, frozen = EXCLUDED.frozen,
      spend = coalesce(EXCLUDED.spend, a.spend);

  -- 3. Move the balances by what the transfers' contributions changed.
  UPDATE ledger_accounts a SET
      debits_posted = a.debits_posted + d.debits_posted,
      debits_pending = a.debits_pending + d.debits_pending,
      credits_posted = a.credits_posted + d.credits_posted,
      credits_pending = a.credits_pending + d.credits_pending
    FROM (
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
        FROM unnest(t_id, t_debit, t_credit, t_amount, t_state, t_advanced)
          AS n(id, debit, credit, amount, state, advanced)
        LEFT JOIN ledger_transfers o ON o.id = n.id
      ) c
      CROSS JOIN LATERAL (VALUES ('d', c.d_acct), ('c', c.c_acct)) AS s(side, acct)
      GROUP BY acct
    ) d
    WHERE a.id = d.acct AND (d.debits_posted <> 0 OR d.debits_pending <> 0 OR d.credits_posted <> 0
      OR d.credits_pending <> 0);

  -- 4. The transfers themselves.
  INSERT INTO ledger_transfers AS t
    SELECT * FROM unnest(t_id, t_debit, t_credit, t_amount, t_state, t_code, t_memo, t_key, t_advanced,
      t_spent_at, t_timeout_at, t_created_at, t_resolved_at)
    ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount, state = EXCLUDED.state,
      advanced = EXCLUDED.advanced, spent_at = EXCLUDED.spent_at, resolved_at = EXCLUDED.resolved_at;

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
      SELECT j.at, j.type, array_remove(ARRAY[j.a1, j.a2], NULL), j.transfer, j.amount, j.detail
      FROM unnest(j_at, j_type, j_acct1, j_acct2, j_transfer, j_amount, j_detail)
        AS j(at, type, a1, a2, transfer, amount, detail)
      RETURNING seq, account_ids
  )
  INSERT INTO ledger_journal_accounts (account_id, seq)
    SELECT DISTINCT unnest(ins.account_ids), ins.seq FROM ins;

  -- 7. Side records (null value: delete).
  DELETE FROM ledger_records r USING unnest(r_key, r_value) AS x(key, value)
    WHERE r.key = x.key AND x.value IS NULL;
  INSERT INTO ledger_records (key, value)
    SELECT key, value FROM unnest(r_key, r_value) AS x(key, value) WHERE value IS NOT NULL
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
END
$$;
`;

/**
 * The operator console's account lists: search by name prefix (in lower case, byte order, then
 * id) and the frozen accounts (a partial index: only they are in it). Search by id prefix uses
 * the primary key (COLLATE "C").
 */
const ACCOUNT_INDEXES = `
CREATE INDEX ledger_accounts_name ON ledger_accounts ((lower(name) COLLATE "C"), id);
CREATE INDEX ledger_accounts_frozen ON ledger_accounts (id) WHERE frozen;
`;

/**
 * Where the leader's duties resume (the LND invoice subscription's add and settle indexes, and
 * any other duty cursor by name): written by whichever instance leads, read by the next one.
 */
const DUTY_CURSORS = `
CREATE TABLE duty_cursors (
  name text COLLATE "C" PRIMARY KEY,
  add_index bigint NOT NULL CHECK (add_index >= 0),
  settle_index bigint NOT NULL CHECK (settle_index >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
`;

/**
 * What the instances of one deployment must agree on about each device (`PostgresDeviceCounters`):
 * its last accepted request counter (taken by one conditional upsert, `WHERE counter < the new
 * one`, so a request replayed to another instance is refused), the last event number handed out
 * (incremented in place, so no two instances number two events alike), and whether it was revoked
 * (which every instance's next request check sees). The device records (`dev!`) keep their own
 * copies for the operator's list; this table is the rule. Version 5 is the ledger's account
 * leases (another branch): versions are never renumbered, and the runner applies any missing one.
 */
/**
 * Takes into `device_counters` what the device records (`dev!` side records, the registry's JSON)
 * say: their last counter, last event number and revocation, never lowering a row already there.
 * Run by migration 6 (devices registered before it) and after an import (a store moved from
 * LevelDB), so the rule starts where each device's record stands.
 */
export const SEED_DEVICE_COUNTERS = `
INSERT INTO device_counters AS c (device_id, counter, event_seq, revoked)
  SELECT substr(key, 5), coalesce((v->>'lastCounter')::bigint, 0),
    coalesce((v->>'lastEventSeq')::bigint, 0), coalesce(v->>'state' = 'revoked', false)
  FROM (SELECT key, value::jsonb AS v FROM ledger_records WHERE key LIKE 'dev!%') AS d
ON CONFLICT (device_id) DO UPDATE SET
  counter = GREATEST(c.counter, EXCLUDED.counter),
  event_seq = GREATEST(c.event_seq, EXCLUDED.event_seq),
  revoked = c.revoked OR EXCLUDED.revoked;
`;

const DEVICE_COUNTERS = `
CREATE TABLE device_counters (
  device_id text COLLATE "C" PRIMARY KEY,
  counter bigint NOT NULL DEFAULT 0 CHECK (counter >= 0),
  event_seq bigint NOT NULL DEFAULT 0 CHECK (event_seq >= 0),
  revoked boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
${SEED_DEVICE_COUNTERS}`;

/**
 * The pending transfers of an account as debit: what an instance reads when it takes the
 * account's lease (`pendingDebits`), from an index of the pending ones only (bounded by what is
 * live, not by history).
 */
const PENDING_DEBITS = `
CREATE INDEX ledger_transfers_pending_debit ON ledger_transfers (debit_account_id) WHERE state = 'pending';
`;

/**
 * Where the leader serves (`cluster_leader`, one row: written by the elected instance on the
 * session that holds the leader lock, read by followers to forward what the leader owns), and the
 * deployment's secrets every instance must share (`cluster_secrets`: the L402 root key, the device
 * key), created once by the first instance to need one.
 */
const CLUSTER = `
CREATE TABLE cluster_leader (
  id smallint PRIMARY KEY CHECK (id = 1),
  instance_id text NOT NULL,
  url text NOT NULL,
  elected_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cluster_secrets (
  name text COLLATE "C" PRIMARY KEY,
  value text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
`;

/**
 * One live attempt per payment hash across instances (`PostgresPaymentHashClaims`): the attempt
 * holding each hash paid through LND. Rows stay (one per hash ever paid out, like the payments'
 * own `payhash!` index); a failed attempt's is taken over by the next one.
 */
const PAYMENT_HASH_CLAIMS = `
CREATE TABLE payment_hash_claims (
  payment_hash text COLLATE "C" PRIMARY KEY,
  payment_id text NOT NULL,
  claimed_at bigint NOT NULL
);
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'ledger tables', sql: LEDGER_V1 },
  { version: 2, name: 'ledger commit function', sql: LEDGER_COMMIT_FN },
  { version: 3, name: 'account search and frozen indexes', sql: ACCOUNT_INDEXES },
  { version: 4, name: 'duty cursors', sql: DUTY_CURSORS },
  { version: 5, name: 'account leases', sql: ACCOUNT_LEASES },
  { version: 6, name: 'device counters', sql: DEVICE_COUNTERS },
  { version: 7, name: 'pending transfers by debit account', sql: PENDING_DEBITS },
  { version: 8, name: 'cluster leader address and shared secrets', sql: CLUSTER },
  { version: 9, name: 'payment hash claims', sql: PAYMENT_HASH_CLAIMS },
];

/**
 * Applies the migrations the database lacks, in version order; returns the versions this call
 * applied (none when another instance got there first). Refuses a database migrated by a newer
 * gateway (DATABASE_SCHEMA_TOO_NEW).
 */
export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  const known = ordered[ordered.length - 1]?.version ?? 0;
  const applied: number[] = [];
  for (const m of ordered) {
    const ran = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY.toString()}::bigint)`;
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version integer PRIMARY KEY,
           name text NOT NULL,
           applied_at timestamptz NOT NULL DEFAULT now()
         )`,
      );
      const [top] = await tx<{ v: number | null }[]>`SELECT max(version) AS v FROM schema_migrations`;
      if (top?.v != null && top.v > known) throw new SchemaTooNewError(top.v, known);
      const done = await tx`SELECT 1 FROM schema_migrations WHERE version = ${m.version}`;
      if (done.length > 0) return false;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      return true;
    });
    if (ran) applied.push(m.version);
  }
  return applied;
}
