import type { EventType } from '../../payments/event-relay.js';
import type { AccountEvent } from '../../payments/types.js';

/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; frames stay below with room to spare. */
export const FRAME_MAX_BYTES = 7900;
/** A message takes at most this many frames (about 1 MB); a larger event is not relayed. */
export const MAX_FRAMES = 128;

/** What instances tell each other on the channel. */
export type RelayMessage =
  /** An account event published on the sender. */
  | { k: 'e'; a: string; e: AccountEvent }
  /** The sender (re)started listening: forget what it announced, and tell it what you want. */
  | { k: 'h' }
  /** Forget what the sender announced (its full interest follows). */
  | { k: 'r' }
  /** The sender's every-account subscribers: all types, or these. */
  | { k: 't'; all: boolean; types: EventType[] }
  /** Accounts the sender now has (`+`) or no longer has (`-`) subscribers for. */
  | { k: '+' | '-'; a: string[] }
  /** The sender stops relaying. */
  | { k: 'b' };

const BIGINT = '$bigint';

/** JSON in which bigints (msat amounts) survive as `{"$bigint": "<decimal>"}`. */
export function encodeMessage(message: RelayMessage): string {
  return JSON.stringify(message, (_k, v: unknown) =>
    typeof v === 'bigint' ? { [BIGINT]: v.toString() } : v,
  );
}

/** The message back, or undefined for something no instance of this version sends. */
export function decodeMessage(body: string): RelayMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body, (_k, v: unknown) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
      const tagged = (v as Record<string, unknown>)[BIGINT];
      return typeof tagged === 'string' && Object.keys(v).length === 1 ? BigInt(tagged) : v;
    });
  } catch {
    return undefined;
  }
  return isMessage(value) ? value : undefined;
}

function isMessage(v: unknown): v is RelayMessage {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  switch (m['k']) {
    case 'e': {
      const e = m['e'];
      return typeof m['a'] === 'string' && typeof e === 'object' && e !== null && 'type' in e;
    }
    case 'h':
    case 'r':
    case 'b':
      return true;
    case 't':
      return typeof m['all'] === 'boolean' && Array.isArray(m['types']);
    case '+':
    case '-':
      return Array.isArray(m['a']) && m['a'].every((a) => typeof a === 'string');
    default:
      return false;
  }
}

/**
 * The NOTIFY payloads of one message: `<sender>|<message no>|<frame no>|<frames>|<part of the
 * body>`, each under FRAME_MAX_BYTES (UTF-8), cut between characters. Undefined when it would
 * take more than MAX_FRAMES.
 */
export function frames(sender: string, messageNo: number, body: string): string[] | undefined {
  const bytes = Buffer.from(body, 'utf8');
  const room = FRAME_MAX_BYTES - Buffer.byteLength(`${sender}|${messageNo}|${MAX_FRAMES}|${MAX_FRAMES}|`);
  const parts: string[] = [];
  for (let start = 0; start < bytes.length || parts.length === 0;) {
    let end = Math.min(start + room, bytes.length);
    // Not inside a character: UTF-8 continuation bytes are 10xxxxxx.
    while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end -= 1;
    parts.push(bytes.subarray(start, end).toString('utf8'));
    start = end;
    if (parts.length > MAX_FRAMES) return undefined;
  }
  return parts.map((p, i) => `${sender}|${messageNo}|${i}|${parts.length}|${p}`);
}

/**
 * Puts frames back together. A transaction's notifications reach a listener together (PostgreSQL
 * serialises notifying commits), and a message's frames are sent in one statement, so at most one
 * message per sender is ever incomplete here: a frame of another message drops it (its frames were
 * lost with a dropped connection). Nothing is kept once a message is whole.
 */
export class FrameAssembler {
  private readonly partial = new Map<string, { no: string; parts: string[]; got: number }>();
  /** Messages dropped incomplete or malformed frames, since start. */
  dropped = 0;

  /** The sender and body once a message is whole. */
  accept(frame: string): { sender: string; body: string } | undefined {
    const fields = splitHeader(frame);
    if (!fields) {
      this.dropped += 1;
      return undefined;
    }
    const { sender, no, index, count, part } = fields;
    if (count === 1) {
      if (this.partial.delete(sender)) this.dropped += 1;
      return { sender, body: part };
    }
    let p = this.partial.get(sender);
    if (p && p.no !== no) {
      this.partial.delete(sender);
      this.dropped += 1;
      p = undefined;
    }
    if (!p) {
      p = { no, parts: new Array<string>(count).fill(''), got: 0 };
      this.partial.set(sender, p);
    }
    if (index >= p.parts.length) return undefined;
    p.parts[index] = part;
    p.got += 1;
    if (p.got < p.parts.length) return undefined;
    this.partial.delete(sender);
    return { sender, body: p.parts.join('') };
  }
}

function splitHeader(
  frame: string,
): { sender: string; no: string; index: number; count: number; part: string } | undefined {
  const at: number[] = [];
  for (let i = 0, from = 0; i < 4; i += 1) {
    const bar = frame.indexOf('|', from);
    if (bar < 0) return undefined;
    at.push(bar);
    from = bar + 1;
  }
  const index = Number(frame.slice(at[1]! + 1, at[2]));
  const count = Number(frame.slice(at[2]! + 1, at[3]));
  if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || count > MAX_FRAMES)
    return undefined;
  if (index < 0 || index >= count) return undefined;
  return {
    sender: frame.slice(0, at[0]),
    no: frame.slice(at[0]! + 1, at[1]),
    index,
    count,
    part: frame.slice(at[3]! + 1),
  };
}
