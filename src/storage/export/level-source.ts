import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Level } from 'level';
import type { StoredKey } from '../../ledger/store.js';
import type { JournalEntry } from '../../ledger/types.js';
import { decodeAccount, decodeTransfer } from '../level-ledger-store.js';
import { StoreMoveError, type ExportItem } from './format.js';

/** The ledger's key prefix in the root database, and the invoice cursor's key (LevelCursorStore). */
const LEDGER = '!ledger!';
const INVOICE_CURSOR = 'lightning/invoice-cursor';

/**
 * The LevelDB directory of a gateway data dir (`<dir>/db`), or `dir` itself when it is one (it
 * has LevelDB's CURRENT file).
 */
export function levelDir(dataDir: string): string {
  const dir = resolve(dataDir);
  return existsSync(join(dir, 'CURRENT')) ? dir : join(dir, 'db');
}

/**
 * Opens the gateway's LevelDB for export, never creating one. LevelDB's LOCK file is held by a
 * running gateway: that is refused (STORE_SOURCE_LOCKED), as is a directory with no store.
 */
export async function openLevelSource(dataDir: string): Promise<Level<string, string>> {
  const dir = levelDir(dataDir);
  if (!existsSync(join(dir, 'CURRENT')))
    throw new StoreMoveError('STORE_SOURCE_MISSING', `no LevelDB store at ${dir}`, { dir });
  const db = new Level<string, string>(dir, { valueEncoding: 'utf8', createIfMissing: false });
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED')
      throw new StoreMoveError(
        'STORE_SOURCE_LOCKED',
        `the LevelDB store at ${dir} is locked: a gateway is running on it; stop it first`,
        { dir },
      );
    throw err;
  }
  return db;
}

/** A key range under a prefix of the ledger: `tag!…`. */
const range = (tag: string): { gt: string; lt: string } => ({
  gt: `${LEDGER}${tag}!`,
  lt: `${LEDGER}${tag}"`,
});

/** The ledger's own key tags (see LevelLedgerStore); anything else under its prefix is unknown. */
const LEDGER_TAGS = new Set(['a', 't', 'tt', 'tp', 'i', 'it', 'j', 'ja', 'm', 'r', 'an', 'af']);

/**
 * Everything the LevelDB store holds, streamed in the export's order (accounts, transfers, keys,
 * journal, records, cursors; each in key order). Indexes (tt, tp, it, ja, an, af) and marks (m)
 * are derived and left out: the target rebuilds its own. A key written before keys carried their
 * time is dated from its transfer, as the ledger does. Refuses keys it does not know
 * (STORE_SOURCE_UNKNOWN_KEYS) rather than leave them behind; checked first, by range scans outside
 * the known prefixes.
 */
export async function* levelItems(db: Level<string, string>): AsyncGenerator<ExportItem> {
  await checkKnownKeys(db);
  for await (const v of db.values(range('a'))) {
    const { account, spend } = decodeAccount(v);
    yield spend === undefined ? { k: 'account', account } : { k: 'account', account, spend };
  }
  for await (const v of db.values(range('t'))) yield { k: 'transfer', transfer: decodeTransfer(v) };
  const prefix = range('i').gt.length;
  for await (const [k, v] of db.iterator(range('i'))) {
    const r = JSON.parse(v) as Partial<StoredKey> & { transferId: string; fingerprint: string };
    let at = r.at;
    if (at === undefined) {
      const t = await db.get(`${LEDGER}t!${r.transferId}`);
      at = t === undefined ? 0 : decodeTransfer(t).createdAt;
    }
    yield { k: 'key', key: k.slice(prefix), transferId: r.transferId, fingerprint: r.fingerprint, at };
  }
  for await (const v of db.values(range('j'))) yield { k: 'journal', entry: JSON.parse(v) as JournalEntry };
  const rp = range('r').gt.length;
  for await (const [k, v] of db.iterator(range('r'))) yield { k: 'record', key: k.slice(rp), value: v };
  const cursor = await db.get(INVOICE_CURSOR);
  if (cursor !== undefined) {
    const c = JSON.parse(cursor) as { addIndex: number; settleIndex: number };
    yield { k: 'cursor', name: INVOICE_CURSOR, addIndex: c.addIndex, settleIndex: c.settleIndex };
  }
}

async function checkKnownKeys(db: Level<string, string>): Promise<void> {
  const unknown: string[] = [];
  const note = (k: string): boolean => {
    unknown.push(k);
    return unknown.length >= 5;
  };
  // Root keys before and after the ledger's prefix, other than the cursor.
  for await (const k of db.keys({ lt: LEDGER })) if (k !== INVOICE_CURSOR && note(k)) break;
  for await (const k of db.keys({ gte: `${LEDGER.slice(0, -1)}"` }))
    if (k !== INVOICE_CURSOR && note(k)) break;
  // Ledger tags: jump from one tag to the next (one seek per tag, not a scan of every key).
  let from = LEDGER;
  for (;;) {
    let next: string | undefined;
    for await (const k of db.keys({ gt: from, lt: `${LEDGER.slice(0, -1)}"`, limit: 1 })) next = k;
    if (next === undefined) break;
    const rest = next.slice(LEDGER.length);
    const cut = rest.indexOf('!');
    const tag = cut < 0 ? rest : rest.slice(0, cut);
    if (!LEDGER_TAGS.has(tag) && note(next)) break;
    if (cut < 0) from = next;
    else from = `${LEDGER}${tag}"`;
  }
  if (unknown.length > 0)
    throw new StoreMoveError(
      'STORE_SOURCE_UNKNOWN_KEYS',
      `the LevelDB store holds keys this gateway does not know (${unknown.join(', ')}): not exported`,
      { keys: unknown },
    );
}
