import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { RecordIndex } from '../ledger/record-index.js';
import { decodeStream, encodeStream } from './codec.js';
import { activeMsAt, type StreamModel } from './model.js';
import type { Logger } from './ports.js';

/**
 * A stream is final once stopped with nothing left to do: a stopped remote stream may still
 * drain what it owes, finish a send intent or wait for payments in flight.
 */
export function isFinalStream(s: StreamModel): boolean {
  return s.state === 'stopped' && !s.drain && s.intent === undefined && s.inFlight.length === 0;
}

/**
 * Outgoing streams on disk (`stream!<id>`, the record the scheduler writes with the stream's
 * money), with the `RecordIndex` entries: open ones (what a start loads), by payer and payee,
 * by creation time.
 */
export const streamIndex = new RecordIndex<StreamModel>(
  'stream',
  { encode: (s) => encodeStream(s, activeMsAt(s, s.updatedAt)), decode: decodeStream },
  (s) => [s.payerAccountId, s.payeeAccountId],
  isFinalStream,
);

const MARK = 'streamidx!v1';

/** The stream's index entries (its record is written by the engine, in the batch of its money). */
export function streamIndexRecords(s: StreamModel): SideRecords {
  return streamIndex.records(s).slice(1);
}

/**
 * The streams not yet final, read from disk. A store from before the index is indexed first,
 * a page at a time (nothing of it stays in memory); an unreadable record is logged and skipped.
 */
export async function loadOpenStreams(ledger: Ledger, log: Logger): Promise<StreamModel[]> {
  if ((await ledger.getRecord(MARK)) === undefined) {
    let after: string | undefined;
    for (;;) {
      const page = await ledger.listRecords('stream!', { limit: 500, ...(after ? { after } : {}) });
      if (page.length === 0) break;
      const out: SideRecords = [];
      for (const r of page) {
        try {
          out.push(...streamIndexRecords(decodeStream(r.value)));
        } catch (err) {
          log.error({ err, key: r.key }, 'unreadable stream record; skipped');
        }
      }
      if (out.length > 0) await ledger.putRecords(out);
      after = page[page.length - 1]!.key;
    }
    await ledger.putRecords([{ key: MARK, value: String(Date.now()) }]);
  }
  const open: StreamModel[] = [];
  const prefix = 'streamopen!';
  for (const r of await ledger.listRecords(prefix)) {
    const key = streamIndex.key(r.key.slice(prefix.length));
    const raw = await ledger.getRecord(key);
    if (raw === undefined) continue;
    try {
      const s = decodeStream(raw);
      if (!isFinalStream(s)) open.push(s);
    } catch (err) {
      log.error({ err, key }, 'unreadable stream record; skipped');
    }
  }
  return open;
}
