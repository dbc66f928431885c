import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLIP10_RECORD,
  bytesToUuid,
  decodeBlip10,
  decodeStreamRecord,
  encodeBlip10,
  encodeStreamRecord,
  readStreamTag,
  STREAM_RECORD,
  streamRecords,
  uuidToBytes,
} from '../../../src/streams/records.js';

const hexJson = (o: unknown): string => Buffer.from(JSON.stringify(o), 'utf8').toString('hex');
const uuidArb = fc.uuid().map((u) => u.toLowerCase());

describe('stream TLV records', () => {
  it('writes the bLIP-10 JSON with exact integer amounts and our binary record', () => {
    const streamId = randomUUID();
    const recipientId = randomUUID();
    const [blip, own] = streamRecords({
      streamId,
      seq: 7,
      recipientId,
      valueMsat: 1500n,
      totalMsat: 2n ** 60n,
      activeSeconds: 42,
    });
    expect(blip!.type).toBe(7629169n);
    expect(own!.type).toBe(133773310n);
    const json = Buffer.from(blip!.value, 'hex').toString('utf8');
    expect(json).toBe(
      `{"action":"stream","app_name":"coulomb","value_msat":1500,"value_msat_total":${2n ** 60n},"ts":42,` +
        `"uuid":"${streamId}","seq":7,"recipient":"${recipientId}"}`,
    );
    expect(own!.value).toMatch(/^01[0-9a-f]{80}$/);
    expect(own!.value.slice(2, 34)).toBe(streamId.replaceAll('-', ''));
    expect(own!.value.slice(34, 50)).toBe('0000000000000007');
    expect(own!.value.slice(50)).toBe(recipientId.replaceAll('-', ''));
  });

  it('omits the recipient from the JSON and zeroes it in the binary record when there is none', () => {
    const streamId = randomUUID();
    const json = Buffer.from(
      encodeBlip10({ streamId, seq: 1, valueMsat: 1n, totalMsat: 1n, activeSeconds: 0 }),
      'hex',
    ).toString();
    expect(JSON.parse(json)).not.toHaveProperty('recipient');
    const own = encodeStreamRecord({ streamId, seq: 1 });
    expect(own.slice(50)).toBe('0'.repeat(32));
    expect(decodeStreamRecord(own)).toEqual({ source: 'coulomb', streamId, seq: 1 });
  });

  it('property: the binary record round-trips', () => {
    fc.assert(
      fc.property(
        uuidArb,
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.option(uuidArb, { nil: undefined }),
        (streamId, seq, recipientId) => {
          const hex = encodeStreamRecord({ streamId, seq, ...(recipientId ? { recipientId } : {}) });
          expect(decodeStreamRecord(hex)).toEqual({
            source: 'coulomb',
            streamId,
            seq,
            ...(recipientId && recipientId !== '00000000-0000-0000-0000-000000000000' ? { recipientId } : {}),
          });
        },
      ),
    );
  });

  it('property: the bLIP-10 JSON round-trips what identifies the stream', () => {
    fc.assert(
      fc.property(
        uuidArb,
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.option(uuidArb, { nil: undefined }),
        fc.bigInt({ min: 1n, max: 2_100_000_000_000_000_000n }),
        (streamId, seq, recipientId, value) => {
          const hex = encodeBlip10({
            streamId,
            seq,
            ...(recipientId ? { recipientId } : {}),
            valueMsat: value,
            totalMsat: value,
            activeSeconds: seq,
          });
          expect(decodeBlip10(hex)).toEqual({
            source: 'blip10',
            streamId,
            seq,
            ...(recipientId ? { recipientId } : {}),
          });
        },
      ),
    );
  });

  it('property: UUIDs and their 16 bytes convert both ways', () => {
    fc.assert(
      fc.property(uuidArb, (u) => {
        expect(bytesToUuid(uuidToBytes(u))).toBe(u);
      }),
    );
    expect(() => uuidToBytes('not-a-uuid')).toThrow();
  });

  it('rejects malformed records instead of guessing', () => {
    const good = encodeStreamRecord({ streamId: randomUUID(), seq: 3 });
    expect(decodeStreamRecord(good.slice(0, -2))).toBeUndefined(); // short
    expect(decodeStreamRecord('02' + good.slice(2))).toBeUndefined(); // unknown version
    expect(decodeStreamRecord(good.slice(0, 34) + 'ff'.repeat(8) + good.slice(50))).toBeUndefined(); // seq > 2^53
    expect(decodeStreamRecord('zz'.repeat(41))).toBeUndefined();
    expect(decodeBlip10('7b')).toBeUndefined(); // "{"
    expect(decodeBlip10(hexJson([1, 2]))).toBeUndefined();
    expect(decodeBlip10(hexJson({ action: 'boost', podcast: 'x' }))).toBeUndefined(); // nothing of ours
    expect(decodeBlip10(hexJson({ uuid: 'nope', recipient: 42 }))).toBeUndefined();
    expect(decodeBlip10('ab'.repeat(5000))).toBeUndefined(); // too large to be ours
    expect(decodeBlip10(hexJson({ uuid: randomUUID(), seq: -1 }))).not.toHaveProperty('seq');
  });

  it('prefers our binary record, falls back to bLIP-10, ignores other records', () => {
    const streamId = randomUUID();
    const recipientId = randomUUID();
    const other = { type: 5482373484n, value: 'ab'.repeat(32) };
    const blip = {
      type: BLIP10_RECORD,
      value: hexJson({ action: 'stream', uuid: streamId, recipient: recipientId }),
    };
    expect(readStreamTag([other, blip])).toEqual({ source: 'blip10', streamId, recipientId });
    const own = { type: STREAM_RECORD, value: encodeStreamRecord({ streamId, seq: 9, recipientId }) };
    expect(readStreamTag([blip, own, other])).toEqual({ source: 'coulomb', streamId, seq: 9, recipientId });
    const broken = { type: STREAM_RECORD, value: '00' };
    expect(readStreamTag([broken, blip])?.source).toBe('blip10');
    expect(readStreamTag([other])).toBeUndefined();
    expect(readStreamTag([])).toBeUndefined();
  });
});
