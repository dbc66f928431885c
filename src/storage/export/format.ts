import { createHash, type Hash } from 'node:crypto';
import { AppError } from '../../domain/errors.js';
import { msat } from '../../domain/msat.js';
import type { SpendRecord } from '../../ledger/spend-buckets.js';
import type { Account, AccountKind, JournalEntry, Transfer, TransferState } from '../../ledger/types.js';

/**
 * The portable export of a ledger store (`coulomb store export`, `import`, `verify`): NDJSON, one
 * JSON object a line, UTF-8.
 *   line 1      header  {"format":"coulomb-store-export","version":1,"source":"leveldb","createdAt":…}
 *   lines 2…n-1 items   {"k":"account"|"transfer"|"key"|"journal"|"record"|"cursor", …}
 *   line n      trailer {"k":"end","counts":{…},"digests":{…},"sha256":…}
 * Amounts are decimal strings, never JS numbers. Items come kind by kind, each kind in its key
 * order (accounts and transfers by id, keys by key, journal by seq, records by key, cursors by
 * name): both stores read back in that order, so a kind's digest (sha256 of its lines) is the same
 * for the file, the LevelDB store and the PostgreSQL store holding the same state. The trailer's
 * `sha256` covers every line before it (with its newline): a truncated or edited file is refused.
 */
export const EXPORT_FORMAT = 'coulomb-store-export';
export const EXPORT_VERSION = 1;

export const EXPORT_KINDS = ['account', 'transfer', 'key', 'journal', 'record', 'cursor'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export type StoreMoveErrorCode =
  | 'STORE_EXPORT_CORRUPT'
  | 'STORE_EXPORT_TRUNCATED'
  | 'STORE_EXPORT_VERSION_UNKNOWN'
  | 'STORE_SOURCE_MISSING'
  | 'STORE_SOURCE_LOCKED'
  | 'STORE_SOURCE_UNKNOWN_KEYS'
  | 'STORE_TARGET_NOT_EMPTY'
  | 'STORE_TARGET_NO_CURSOR_TABLE'
  | 'STORE_VERIFY_MISMATCH';

/** A refusal of the store export, import or verification, with a stable code. */
export class StoreMoveError extends AppError {
  declare readonly code: StoreMoveErrorCode;
  constructor(code: StoreMoveErrorCode, message: string, details?: Record<string, unknown>) {
    super(code, message, 500, details);
  }
}

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: number;
  source: 'leveldb' | 'postgres';
  createdAt: string;
}

/** One thing the store holds. */
export type ExportItem =
  | { k: 'account'; account: Account; spend?: SpendRecord }
  | { k: 'transfer'; transfer: Transfer }
  | { k: 'key'; key: string; transferId: string; fingerprint: string; at: number }
  | { k: 'journal'; entry: JournalEntry }
  | { k: 'record'; key: string; value: string }
  | { k: 'cursor'; name: string; addIndex: number; settleIndex: number };

/** Per kind: how many items, and the sha256 (hex) of their lines in order. */
export interface ExportSummary {
  counts: Record<ExportKind, number>;
  digests: Record<ExportKind, string>;
}

export interface ExportTrailer extends ExportSummary {
  k: 'end';
  sha256: string;
}

/** The item's one canonical line (no newline): fixed field order, optional fields left out. */
export function encodeItem(item: ExportItem): string {
  switch (item.k) {
    case 'account': {
      const a = item.account;
      return JSON.stringify({
        k: 'account',
        id: a.id,
        kind: a.kind,
        name: a.name,
        allowNegative: a.allowNegative,
        frozen: a.frozen,
        creditsPosted: a.creditsPosted.toString(),
        debitsPosted: a.debitsPosted.toString(),
        creditsPending: a.creditsPending.toString(),
        debitsPending: a.debitsPending.toString(),
        createdAt: a.createdAt,
        ...(item.spend !== undefined ? { spend: item.spend } : {}),
      });
    }
    case 'transfer': {
      const t = item.transfer;
      return JSON.stringify({
        k: 'transfer',
        id: t.id,
        debitAccountId: t.debitAccountId,
        creditAccountId: t.creditAccountId,
        amount: t.amount.toString(),
        state: t.state,
        code: t.code,
        ...(t.memo !== undefined ? { memo: t.memo } : {}),
        ...(t.idempotencyKey !== undefined ? { idempotencyKey: t.idempotencyKey } : {}),
        ...(t.advanced !== undefined ? { advanced: t.advanced.toString() } : {}),
        ...(t.spentAt !== undefined ? { spentAt: t.spentAt } : {}),
        ...(t.timeoutAt !== undefined ? { timeoutAt: t.timeoutAt } : {}),
        createdAt: t.createdAt,
        ...(t.resolvedAt !== undefined ? { resolvedAt: t.resolvedAt } : {}),
      });
    }
    case 'key':
      return JSON.stringify({
        k: 'key',
        key: item.key,
        transferId: item.transferId,
        fingerprint: item.fingerprint,
        at: item.at,
      });
    case 'journal': {
      const e = item.entry;
      return JSON.stringify({
        k: 'journal',
        seq: e.seq,
        at: e.at,
        type: e.type,
        accountIds: e.accountIds,
        ...(e.transferId !== undefined ? { transferId: e.transferId } : {}),
        ...(e.amount !== undefined ? { amount: e.amount } : {}),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      });
    }
    case 'record':
      return JSON.stringify({ k: 'record', key: item.key, value: item.value });
    case 'cursor':
      return JSON.stringify({
        k: 'cursor',
        name: item.name,
        addIndex: item.addIndex,
        settleIndex: item.settleIndex,
      });
  }
}

const corrupt = (line: number, why: string): StoreMoveError =>
  new StoreMoveError('STORE_EXPORT_CORRUPT', `export line ${line}: ${why}`, { line });

/** Typed reads of a parsed line's fields; a wrong type is a corrupt file. */
class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly line: number,
  ) {}

  str(name: string): string {
    const v = this.o[name];
    if (typeof v !== 'string') throw corrupt(this.line, `${name} is not a string`);
    return v;
  }

  /** A decimal integer string (an amount), kept exact. */
  int(name: string): bigint {
    const v = this.str(name);
    if (!/^-?\d+$/.test(v)) throw corrupt(this.line, `${name} is not a decimal integer`);
    return BigInt(v);
  }

  num(name: string): number {
    const v = this.o[name];
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw corrupt(this.line, `${name} is not an integer`);
    return v;
  }

  bool(name: string): boolean {
    const v = this.o[name];
    if (typeof v !== 'boolean') throw corrupt(this.line, `${name} is not a boolean`);
    return v;
  }

  has(name: string): boolean {
    return this.o[name] !== undefined;
  }

  value(name: string): unknown {
    return this.o[name];
  }
}

function parseObject(text: string, line: number): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw corrupt(line, 'not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw corrupt(line, 'not a JSON object');
  return o as Record<string, unknown>;
}

/** An item line back into its item (`line`: its number in the file, for messages). */
export function decodeItem(text: string, line = 0): ExportItem {
  const f = new Fields(parseObject(text, line), line);
  const k = f.str('k');
  switch (k) {
    case 'account': {
      const account: Account = {
        id: f.str('id'),
        kind: f.str('kind') as AccountKind,
        name: f.str('name'),
        allowNegative: f.bool('allowNegative'),
        frozen: f.bool('frozen'),
        creditsPosted: f.int('creditsPosted'),
        debitsPosted: f.int('debitsPosted'),
        creditsPending: f.int('creditsPending'),
        debitsPending: f.int('debitsPending'),
        createdAt: f.num('createdAt'),
      };
      const spend = f.value('spend');
      if (spend !== undefined && (typeof spend !== 'object' || spend === null))
        throw corrupt(line, 'spend is not an object');
      return spend === undefined ? { k, account } : { k, account, spend: spend as SpendRecord };
    }
    case 'transfer': {
      const transfer: Transfer = {
        id: f.str('id'),
        debitAccountId: f.str('debitAccountId'),
        creditAccountId: f.str('creditAccountId'),
        amount: msat(f.int('amount')),
        state: f.str('state') as TransferState,
        code: f.str('code'),
        createdAt: f.num('createdAt'),
      };
      if (!['pending', 'posted', 'voided'].includes(transfer.state)) throw corrupt(line, 'unknown state');
      if (f.has('memo')) transfer.memo = f.str('memo');
      if (f.has('idempotencyKey')) transfer.idempotencyKey = f.str('idempotencyKey');
      if (f.has('advanced')) transfer.advanced = msat(f.int('advanced'));
      if (f.has('spentAt')) transfer.spentAt = f.num('spentAt');
      if (f.has('timeoutAt')) transfer.timeoutAt = f.num('timeoutAt');
      if (f.has('resolvedAt')) transfer.resolvedAt = f.num('resolvedAt');
      return { k, transfer };
    }
    case 'key':
      return {
        k,
        key: f.str('key'),
        transferId: f.str('transferId'),
        fingerprint: f.str('fingerprint'),
        at: f.num('at'),
      };
    case 'journal': {
      const ids = f.value('accountIds');
      if (!Array.isArray(ids) || !ids.every((x): x is string => typeof x === 'string'))
        throw corrupt(line, 'accountIds is not a list of strings');
      const entry: JournalEntry = {
        seq: f.num('seq'),
        at: f.num('at'),
        type: f.str('type') as JournalEntry['type'],
        accountIds: ids,
      };
      if (f.has('transferId')) entry.transferId = f.str('transferId');
      if (f.has('amount')) entry.amount = f.str('amount');
      if (f.has('detail')) entry.detail = f.str('detail');
      return { k, entry };
    }
    case 'record':
      return { k, key: f.str('key'), value: f.str('value') };
    case 'cursor':
      return { k, name: f.str('name'), addIndex: f.num('addIndex'), settleIndex: f.num('settleIndex') };
    default:
      throw corrupt(line, `unknown kind ${JSON.stringify(k)}`);
  }
}

const zeroCounts = (): Record<ExportKind, number> =>
  Object.fromEntries(EXPORT_KINDS.map((k) => [k, 0])) as Record<ExportKind, number>;

/**
 * Counts and digests per kind of a stream of items, in order: what the trailer records, and what
 * `verify` computes from a store to compare with it.
 */
export class ExportDigest {
  private readonly counts = zeroCounts();
  private readonly hashes = new Map<ExportKind, Hash>(EXPORT_KINDS.map((k) => [k, createHash('sha256')]));

  /** Adds an item (its canonical line) and returns the line. */
  add(item: ExportItem): string {
    const line = encodeItem(item);
    this.counts[item.k] += 1;
    this.hashes.get(item.k)!.update(line + '\n');
    return line;
  }

  summary(): ExportSummary {
    const digests = Object.fromEntries(
      EXPORT_KINDS.map((k) => [k, this.hashes.get(k)!.copy().digest('hex')]),
    ) as Record<ExportKind, string>;
    return { counts: { ...this.counts }, digests };
  }
}

/** Writes an export: `header()`, then `item()` for each item, then `trailer()`; each a line with its newline. */
export class ExportWriter {
  private readonly digest = new ExportDigest();
  private readonly content = createHash('sha256');

  constructor(private readonly source: ExportHeader['source']) {}

  header(now = new Date()): string {
    const h: ExportHeader = {
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      source: this.source,
      createdAt: now.toISOString(),
    };
    return this.out(JSON.stringify(h));
  }

  item(item: ExportItem): string {
    return this.out(this.digest.add(item));
  }

  trailer(): string {
    const t: ExportTrailer = { k: 'end', ...this.digest.summary(), sha256: this.content.digest('hex') };
    return JSON.stringify(t) + '\n';
  }

  private out(line: string): string {
    const s = line + '\n';
    this.content.update(s);
    return s;
  }
}

/**
 * Reads an export line by line (without newlines): the header first, then items, then the
 * trailer, checked against what was read (counts, per-kind digests, content sha256). `finish()`
 * refuses a file that ended before its trailer.
 */
export class ExportReader {
  private header: ExportHeader | undefined;
  private trailer: ExportTrailer | undefined;
  private readonly digest = new ExportDigest();
  private readonly content = createHash('sha256');
  private lines = 0;

  /** The next line: its item, or undefined for the header and trailer. */
  line(text: string): ExportItem | undefined {
    this.lines += 1;
    const n = this.lines;
    if (this.trailer !== undefined) throw corrupt(n, 'data after the trailer');
    if (this.header === undefined) {
      this.header = readHeader(text, n);
      this.content.update(text + '\n');
      return undefined;
    }
    if (text.startsWith('{"k":"end"')) {
      this.trailer = this.check(text, n);
      return undefined;
    }
    const item = decodeItem(text, n);
    // The canonical line is what was hashed at export: an edited line changes the digests.
    this.digest.add(item);
    this.content.update(text + '\n');
    return item;
  }

  /** The summary of a complete, intact file; refuses one without its trailer. */
  finish(): { header: ExportHeader; summary: ExportSummary } {
    if (this.header === undefined)
      throw new StoreMoveError('STORE_EXPORT_TRUNCATED', 'the export is empty (no header line)');
    if (this.trailer === undefined)
      throw new StoreMoveError(
        'STORE_EXPORT_TRUNCATED',
        `the export ends after ${this.lines} lines without its trailer: it is truncated`,
        { lines: this.lines },
      );
    return { header: this.header, summary: { counts: this.trailer.counts, digests: this.trailer.digests } };
  }

  private check(text: string, n: number): ExportTrailer {
    const o = parseObject(text, n) as Partial<ExportTrailer>;
    const sha = this.content.digest('hex');
    if (o.sha256 !== sha)
      throw new StoreMoveError('STORE_EXPORT_CORRUPT', 'the export does not match its checksum (sha256)', {
        expected: o.sha256,
        found: sha,
      });
    const read = this.digest.summary();
    for (const k of EXPORT_KINDS) {
      if (o.counts?.[k] !== read.counts[k] || o.digests?.[k] !== read.digests[k])
        throw new StoreMoveError('STORE_EXPORT_CORRUPT', `the export's ${k} items do not match its trailer`, {
          kind: k,
          expected: o.counts?.[k],
          found: read.counts[k],
        });
    }
    return o as ExportTrailer;
  }
}

function readHeader(text: string, n: number): ExportHeader {
  const o = parseObject(text, n);
  if (o['format'] !== EXPORT_FORMAT) throw corrupt(n, `not a ${EXPORT_FORMAT} file`);
  if (o['version'] !== EXPORT_VERSION)
    throw new StoreMoveError(
      'STORE_EXPORT_VERSION_UNKNOWN',
      `export format version ${String(o['version'])} is unknown to this gateway (it reads version ${EXPORT_VERSION})`,
      { version: o['version'] },
    );
  const f = new Fields(o, n);
  const source = f.str('source');
  if (source !== 'leveldb' && source !== 'postgres') throw corrupt(n, `unknown source ${source}`);
  return { format: EXPORT_FORMAT, version: EXPORT_VERSION, source, createdAt: f.str('createdAt') };
}

/** Where two summaries differ, kind by kind (empty: the same state). */
export function compareSummaries(
  expected: ExportSummary,
  found: ExportSummary,
): { kind: ExportKind; expected: number; found: number }[] {
  return EXPORT_KINDS.filter(
    (k) => expected.counts[k] !== found.counts[k] || expected.digests[k] !== found.digests[k],
  ).map((k) => ({ kind: k, expected: expected.counts[k], found: found.counts[k] }));
}
