/**
 * The few fields of a BOLT11 request a freshly created invoice needs (creation time, expiry, final
 * CLTV delta), read straight from its bech32 words: no checksum or signature check, no public-key
 * recovery. Only for requests our own LND just returned over its authenticated connection (to
 * decode anything else, `decodeInvoice`). Defaults as BOLT11 (and ln-service's parser): expiry
 * 3600 s, CLTV delta 18.
 */
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const WORD = new Map([...CHARSET].map((c, i) => [c, i]));
const CHECKSUM_WORDS = 6;
const SIGNATURE_WORDS = 104;
const TIMESTAMP_WORDS = 7;
const TAG_EXPIRY = 6; // 'x'
const TAG_MIN_FINAL_CLTV = 24; // 'c'
const DEFAULT_EXPIRY_SECONDS = 3600;
const DEFAULT_CLTV_DELTA = 18;

export interface Bolt11Fields {
  createdAt: Date;
  expiresAt: Date;
  cltvDelta: number;
}

export function bolt11Fields(request: string): Bolt11Fields {
  const text = request.toLowerCase();
  const sep = text.lastIndexOf('1');
  const end = text.length - CHECKSUM_WORDS - SIGNATURE_WORDS;
  if (sep < 0 || end - (sep + 1) < TIMESTAMP_WORDS) throw new Error('not a BOLT11 request');
  const word = (i: number): number => {
    const w = WORD.get(text[i]!);
    if (w === undefined) throw new Error('not a BOLT11 request');
    return w;
  };
  const number = (from: number, count: number): number => {
    let n = 0;
    for (let i = from; i < from + count; i++) n = n * 32 + word(i);
    return n;
  };
  let pos = sep + 1;
  const timestamp = number(pos, TIMESTAMP_WORDS);
  pos += TIMESTAMP_WORDS;
  let expiry = DEFAULT_EXPIRY_SECONDS;
  let cltv = DEFAULT_CLTV_DELTA;
  while (pos + 3 <= end) {
    const tag = word(pos);
    const len = number(pos + 1, 2);
    pos += 3;
    if (pos + len > end) throw new Error('not a BOLT11 request');
    if (tag === TAG_EXPIRY) expiry = number(pos, len);
    else if (tag === TAG_MIN_FINAL_CLTV) cltv = number(pos, len) || DEFAULT_CLTV_DELTA;
    pos += len;
  }
  return {
    createdAt: new Date(timestamp * 1000),
    expiresAt: new Date((timestamp + expiry) * 1000),
    cltvDelta: cltv,
  };
}
