import { createReadStream, createWriteStream, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import {
  compareSummaries,
  EXPORT_KINDS,
  ExportDigest,
  ExportReader,
  ExportWriter,
  StoreMoveError,
  type ExportItem,
  type ExportSummary,
} from './format.js';
import { levelItems, openLevelSource } from './level-source.js';

/**
 * The lines of a file (or stdin), without their newlines, streamed. The stream opens when the
 * iteration starts: a readline interface made earlier would lose the lines read before it.
 */
export async function* readLines(path: string | undefined): AsyncGenerator<string> {
  const input: Readable = path === undefined ? process.stdin : createReadStream(path, { encoding: 'utf8' });
  yield* createInterface({ input, crlfDelay: Infinity });
}

async function write(out: Writable, s: string): Promise<void> {
  if (!out.write(s)) await once(out, 'drain');
}

/**
 * Exports the LevelDB store of `dataDir` (refused while a gateway holds it) to `outPath`, or to
 * stdout. A file is written under `<out>.partial` and renamed when complete: an interrupted export
 * leaves no file that looks whole.
 */
export async function exportLevelStore(dataDir: string, outPath: string | undefined): Promise<ExportSummary> {
  const db = await openLevelSource(dataDir);
  const tmp = outPath === undefined ? undefined : `${outPath}.partial`;
  const out: Writable = tmp === undefined ? process.stdout : createWriteStream(tmp, { flags: 'wx' });
  try {
    const writer = new ExportWriter('leveldb');
    await write(out, writer.header());
    for await (const item of levelItems(db)) await write(out, writer.item(item));
    const trailer = writer.trailer();
    await write(out, trailer);
    if (tmp !== undefined && outPath !== undefined) {
      out.end();
      await once(out, 'finish');
      renameSync(tmp, outPath);
    }
    const t = JSON.parse(trailer) as ExportSummary;
    return { counts: t.counts, digests: t.digests };
  } catch (err) {
    if (tmp !== undefined) {
      out.destroy();
      rmSync(tmp, { force: true });
    }
    throw err;
  } finally {
    await db.close();
  }
}

/** Reads a whole export and checks it (header, every line, trailer): its summary. */
export async function checkExport(lines: AsyncIterable<string>): Promise<ExportSummary> {
  const reader = new ExportReader();
  for await (const text of lines) if (text !== '') reader.line(text);
  return reader.finish().summary;
}

/** Counts and digests of a store's items (see `levelItems`, `postgresItems`). */
export async function summarize(items: AsyncIterable<ExportItem>): Promise<ExportSummary> {
  const digest = new ExportDigest();
  for await (const item of items) digest.add(item);
  return digest.summary();
}

/** The LevelDB store's summary (refused while a gateway holds it). */
export async function summarizeLevelStore(dataDir: string): Promise<ExportSummary> {
  const db = await openLevelSource(dataDir);
  try {
    return await summarize(levelItems(db));
  } finally {
    await db.close();
  }
}

/** Refuses (STORE_VERIFY_MISMATCH) when the target's counts or digests differ from the source's. */
export function assertSameState(source: ExportSummary, target: ExportSummary): void {
  const diff = compareSummaries(source, target);
  if (diff.length > 0)
    throw new StoreMoveError(
      'STORE_VERIFY_MISMATCH',
      `the target differs from the source: ${diff
        .map((d) => `${d.kind} (${d.expected} in the source, ${d.found} in the target)`)
        .join(', ')}`,
      { kinds: diff },
    );
}

/** A table of counts per kind, with the digests' first 16 hex digits. */
export function formatSummary(s: ExportSummary): string {
  return EXPORT_KINDS.map(
    (k) => `${k.padEnd(9)} ${String(s.counts[k]).padStart(10)}  ${s.digests[k].slice(0, 16)}`,
  ).join('\n');
}
