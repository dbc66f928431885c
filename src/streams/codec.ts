import { msat } from '../domain/msat.js';
import { newChunk, newModel, type InFlightPayment, type SendIntent, type StreamModel } from './model.js';
import type { Caps, Rate, StopReason, StreamPayee, StreamState } from './types.js';

// A stream record is `{"s": <static part>, "d": <dynamic part>}`, bigints as decimal strings.
// The static part (terms and state) is encoded once per state change and reused; the dynamic
// part (time, money, chunk) is a few interpolated fields: a tick re-encodes nothing else.

interface StaticPart {
  v: 1;
  id: string;
  payerAccountId: string;
  payee: StreamPayee;
  payeeAccountId?: string;
  destination?: string;
  recipientId?: string;
  rate:
    { kind: 'time'; rateMsat: string; perSeconds: number } | { kind: 'metered'; priceMsatPerUnit: string };
  caps: { maxTotalMsat?: string; maxDurationSeconds?: number };
  intervalSeconds: number;
  minPaymentMsat: string;
  prefundMsat?: string;
  memo?: string;
  createdAt: number;
  state: StreamState;
  stopReason?: StopReason;
  stopCode?: string;
  stopMessage?: string;
  stoppedAt?: number;
}

interface RemotePart {
  seq: number;
  failures: number;
  drain: boolean;
  inFlight: [string, string][];
  intent?: [number, string, string, number];
}

interface DynamicPart {
  activeMs: number;
  paid: string;
  updatedAt: number;
  /** Metered streams. */
  units?: string;
  /** Local streams: the open chunk's transfer id and amount (what moved of it is the ledger's). */
  chunk?: [string, string];
  remote?: RemotePart;
}

function encodeStatic(s: StreamModel): string {
  const part: StaticPart = {
    v: 1,
    id: s.id,
    payerAccountId: s.payerAccountId,
    payee: s.payee,
    ...(s.payeeAccountId !== undefined ? { payeeAccountId: s.payeeAccountId } : {}),
    ...(s.destination !== undefined ? { destination: s.destination } : {}),
    ...(s.recipientId !== undefined ? { recipientId: s.recipientId } : {}),
    rate:
      s.rate.kind === 'time'
        ? { kind: 'time', rateMsat: s.rate.rateMsat.toString(), perSeconds: s.rate.perSeconds }
        : { kind: 'metered', priceMsatPerUnit: s.rate.priceMsatPerUnit.toString() },
    caps: {
      ...(s.caps.maxTotalMsat !== undefined ? { maxTotalMsat: s.caps.maxTotalMsat.toString() } : {}),
      ...(s.caps.maxDurationSeconds !== undefined ? { maxDurationSeconds: s.caps.maxDurationSeconds } : {}),
    },
    intervalSeconds: s.intervalSeconds,
    minPaymentMsat: s.minPaymentMsat.toString(),
    ...(s.prefundMsat !== undefined ? { prefundMsat: s.prefundMsat.toString() } : {}),
    ...(s.memo !== undefined ? { memo: s.memo } : {}),
    createdAt: s.createdAt,
    state: s.state,
    ...(s.stopReason !== undefined ? { stopReason: s.stopReason } : {}),
    ...(s.stopCode !== undefined ? { stopCode: s.stopCode } : {}),
    ...(s.stopMessage !== undefined ? { stopMessage: s.stopMessage } : {}),
    ...(s.stoppedAt !== undefined ? { stoppedAt: s.stoppedAt } : {}),
  };
  return JSON.stringify(part);
}

function encodeRemote(s: StreamModel): string {
  const part: RemotePart = {
    seq: s.seq,
    failures: s.failures,
    drain: s.drain,
    inFlight: s.inFlight.map((p) => [p.paymentId, p.amount.toString()]),
    ...(s.intent
      ? {
          intent: [
            s.intent.seq,
            s.intent.amount.toString(),
            s.intent.total.toString(),
            s.intent.activeSeconds,
          ],
        }
      : {}),
  };
  return JSON.stringify(part);
}

/**
 * The stream's record with `activeMs` of active time. Per tick only the time, the total paid and
 * the update time are formatted; the rest is cached. Ids are UUIDs: nothing needs escaping.
 */
export function encodeStream(s: StreamModel, activeMs: number): string {
  const head = (s.staticJson ??= encodeStatic(s));
  let d = `{"activeMs":${activeMs},"paid":"${s.paid}","updatedAt":${s.updatedAt}`;
  if (s.rate.kind === 'metered') d += `,"units":"${s.units}"`;
  if (s.chunk !== undefined) d += s.chunk.json;
  if (s.destination !== undefined) d += `,"remote":${encodeRemote(s)}`;
  return `{"s":${head},"d":${d}}}`;
}

function decodeRate(r: StaticPart['rate']): Rate {
  return r.kind === 'time'
    ? { kind: 'time', rateMsat: msat(r.rateMsat), perSeconds: r.perSeconds }
    : { kind: 'metered', priceMsatPerUnit: msat(r.priceMsatPerUnit) };
}

function decodeCaps(c: StaticPart['caps']): Caps {
  return {
    ...(c.maxTotalMsat !== undefined ? { maxTotalMsat: msat(c.maxTotalMsat) } : {}),
    ...(c.maxDurationSeconds !== undefined ? { maxDurationSeconds: c.maxDurationSeconds } : {}),
  };
}

/** Rebuilds a stream from its record. The current active segment is not open: the caller decides. */
export function decodeStream(raw: string): StreamModel {
  const { s, d } = JSON.parse(raw) as { s: StaticPart; d: DynamicPart };
  if (s.v !== 1) throw new Error(`unknown stream record version ${String(s.v)}`);
  const remote = d.remote;
  const intent: SendIntent | undefined = remote?.intent
    ? {
        seq: remote.intent[0],
        amount: msat(remote.intent[1]),
        total: msat(remote.intent[2]),
        activeSeconds: remote.intent[3],
      }
    : undefined;
  return newModel(
    {
      id: s.id,
      payerAccountId: s.payerAccountId,
      payee: s.payee,
      payeeAccountId: s.payeeAccountId,
      destination: s.destination,
      recipientId: s.recipientId,
      rate: decodeRate(s.rate),
      caps: decodeCaps(s.caps),
      intervalSeconds: s.intervalSeconds,
      minPaymentMsat: msat(s.minPaymentMsat),
      prefundMsat: s.prefundMsat !== undefined ? msat(s.prefundMsat) : undefined,
      memo: s.memo,
      createdAt: s.createdAt,
    },
    {
      state: s.state,
      stopReason: s.stopReason,
      stopCode: s.stopCode,
      stopMessage: s.stopMessage,
      stoppedAt: s.stoppedAt,
      updatedAt: d.updatedAt,
      activeMsBefore: d.activeMs,
      units: BigInt(d.units ?? '0'),
      paid: msat(d.paid),
      // What moved of the chunk is read back from the ledger (see StreamsService.start).
      chunk: d.chunk ? newChunk(d.chunk[0], msat(d.chunk[1])) : undefined,
      seq: remote?.seq ?? 0,
      failures: remote?.failures ?? 0,
      drain: remote?.drain ?? false,
      inFlight: (remote?.inFlight ?? []).map(([paymentId, amount]): InFlightPayment => ({
        paymentId,
        amount: msat(amount),
      })),
      intent,
    },
  );
}
