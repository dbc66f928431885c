import { Type } from '@sinclair/typebox';
import { AppError } from '../domain/errors.js';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { requestFingerprint } from '../ledger/idempotency.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../domain/logger.js';
import { recordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import { requestDigest, signResponse, type RequestEnvelope, type ResponseEnvelope } from './envelope.js';
import { DeviceError, DeviceErrorCode } from './errors.js';
import { paramsOf, parseRequest } from './parse.js';
import type { DeviceRegistry } from './registry.js';
import type { Device } from './types.js';
import { VerifyPool } from './verify-pool.js';

/** A device method bound to its checked params: runs for the authenticated device, returns the JSON result. */
export type BoundOperation = (device: Device, request: RequestEnvelope) => Promise<unknown>;

/**
 * One device method. Given the request's params it checks them synchronously, with no side
 * effect (`INVALID_PARAMS` for a missing, mistyped or out-of-range field), and returns the method
 * bound to them. The bridge calls it before the counter is taken: a refusal changes nothing.
 */
export type DeviceOperation = (params: Record<string, unknown>) => BoundOperation;

/** A device method from the parser of its params and its body, which gets what the parser returned. */
export function deviceMethod<P>(
  parse: (params: Record<string, unknown>) => P,
  run: (device: Device, params: P, request: RequestEnvelope) => Promise<unknown>,
): DeviceOperation {
  return (params) => {
    const parsed = parse(params);
    return (device, request) => run(device, parsed, request);
  };
}

export interface BridgeOptions {
  /** How far a request's timestamp may be from the gateway's clock (default 300 s). */
  maxSkewSeconds?: number;
  now?: () => number;
  /** Checks request signatures (a worker pool); default: on this thread. */
  verifier?: Pick<VerifyPool, 'verify'>;
  /**
   * Methods served by another instance (a shared store's leader): the envelope goes there as it
   * came, unverified here (the leader checks its signature and takes its counter).
   */
  forward?: BridgeForward;
  /** How long an answer kept before device keys followed `Ledger.idempotent` counts (default 32 days, the ledger's retention). */
  keptAnswerRetentionMs?: number;
}

/** What the transport sends back: a signed envelope, or (when no device can be named) an error. */
/**
 * Where a request for a method this instance does not serve itself goes (a shared store: device
 * commerce and energy belong to the leader). `send` gives the leader's answer, or undefined when
 * this instance serves the method now.
 */
export interface BridgeForward {
  owns(method: string): boolean;
  /** `relayed`: the envelope already came from another instance, and is never passed on again. */
  send(raw: unknown, relayed: boolean): Promise<BridgeReply | undefined>;
}

export type BridgeReply =
  { status: 200; envelope: ResponseEnvelope } | { status: number; error: { code: string; message: string } };

/** Answers kept before device keys followed `Ledger.idempotent`: read, never written, pruned. */
const KEPT = PREFIXES.deviceKept.prefix;
const legacyKey = (deviceId: string, k: string): string => `${KEPT}${deviceId}!${k}`;
/** A device's key among its account's idempotency keys. */
const requestKey = (deviceId: string, k: string): string => `device-request:${deviceId}:${k}`;
const DAY = 86_400_000;

/** What a method answered (`b` is the JSON text of the result or of the refusal). */
interface Answer {
  ok: boolean;
  b: string;
}

/**
 * A result kept under an idempotency key (`didem!`, before device keys followed
 * `Ledger.idempotent`), with the fingerprint of the request that produced it (`f`, the ledger's
 * `requestFingerprint` of the method and params) and when it was kept (`at`, ms). Records kept
 * before fingerprints have neither: such a record matches any request and does not expire.
 */
const keptCodec = recordCodec(
  'kept device answer',
  Type.Object({
    ok: Type.Boolean(),
    b: Type.String(),
    f: Type.Optional(Type.String()),
    at: Type.Optional(Type.Number()),
  }),
);
type Kept = Answer & { f?: string; at?: number };

/**
 * The device side of the gateway: checks a request envelope (shape, device, signature, clock,
 * method, params, counter — in that order, and nothing changes when one fails), takes the counter,
 * runs the method, and answers with a response signed by the gateway's key. Transports (HTTP,
 * MQTT) only carry the bytes.
 */
export class DeviceBridge {
  private readonly maxSkew: number;
  private readonly now: () => number;
  private readonly inline = new VerifyPool(); // never started: verifies on this thread
  private readonly verifier: Pick<VerifyPool, 'verify'>;
  private readonly forward: BridgeForward | undefined;
  private readonly keyed = new KeyedQueue();
  private readonly retentionMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: DeviceRegistry,
    private readonly ledger: Ledger,
    private readonly gatewayKeyHex: string,
    private readonly operations: Readonly<Record<string, DeviceOperation>>,
    private readonly log: Logger,
    options: BridgeOptions = {},
  ) {
    this.maxSkew = options.maxSkewSeconds ?? 300;
    this.now = options.now ?? Date.now;
    this.verifier = options.verifier ?? this.inline;
    this.forward = options.forward;
    this.retentionMs = options.keptAnswerRetentionMs ?? 32 * DAY;
  }

  /** Prunes expired kept answers now (in the background) and then every `pruneEveryMs`. */
  start(pruneEveryMs = DAY / 4): void {
    const prune = (): void =>
      void this.pruneKeptAnswers().catch((err: unknown) =>
        this.log.warn({ err }, 'pruning the device kept answers failed'),
      );
    prune();
    this.timer = setInterval(prune, pruneEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** `from.relayed`: another instance relayed the envelope (see `BridgeForward`). */
  async handle(raw: unknown, from: { relayed?: boolean } = {}): Promise<BridgeReply> {
    let req: RequestEnvelope;
    let device: Device;
    try {
      req = parseRequest(raw);
      if (this.forward?.owns(req.m)) {
        const answer = await this.forward.send(raw, from.relayed === true);
        if (answer) return answer;
      }
      device = await this.authenticate(req);
    } catch (err) {
      const e =
        err instanceof AppError ? err : new DeviceError(DeviceErrorCode.BAD_ENVELOPE, 'unreadable envelope');
      return { status: e.status, error: { code: e.code, message: e.message } };
    }
    // From here the device is known and the request authentic: every answer is signed.
    let counted: Promise<void> | undefined;
    try {
      const skew = Math.abs(Math.floor(this.now() / 1000) - req.t);
      if (skew > this.maxSkew)
        throw new DeviceError(
          DeviceErrorCode.CLOCK_SKEW,
          `the request time is ${skew} s from the gateway's clock`,
        );
      const op = Object.hasOwn(this.operations, req.m) ? this.operations[req.m] : undefined;
      if (!op) throw new DeviceError(DeviceErrorCode.UNKNOWN_METHOD, `no method ${req.m}`);
      const params = paramsOf(req);
      const run = op(params);
      // Once every check passed the counter is taken: checked against this instance's memory in
      // one synchronous step, then claimed in the counter store every instance shares (if any),
      // which the method waits for. Its durability is not waited for there: the group commit
      // keeps write order, so the request's own writes are never durable before its counter. The
      // answer waits for it (below), and a claim refused afterwards (REPLAYED) replaces a kept answer.
      const take = (): Promise<void> => {
        const { claimed, durable } = this.registry.acceptCounter(device.deviceId, req.c);
        counted = durable;
        claimed.catch(() => undefined); // surfaces through `counted` where it is not awaited
        return claimed;
      };
      const k = req.k;
      let answer: Answer;
      if (k === undefined) {
        await take();
        answer = await this.execute(run, device, req);
      } else {
        // One request per idempotency key at a time: a retry sent while the first still runs
        // waits for it, and gets its answer instead of running the method again.
        answer = await this.keyed.run(legacyKey(device.deviceId, k), () =>
          this.executeOnce(k, params, take, run, device, req),
        );
      }
      await counted;
      return this.reply(req, answer.ok, answer.b);
    } catch (err) {
      // Refused before the counter was taken (nothing changed), or an internal error.
      let code = 'INTERNAL';
      let message = 'internal error';
      if (err instanceof AppError && err.status < 500) {
        code = err.code;
        message = err.message;
      } else this.log.error({ err, deviceId: device.deviceId, method: req.m }, 'device request failed');
      await counted?.catch(() => undefined);
      return this.reply(req, false, JSON.stringify({ code, message }));
    }
  }

  /** Runs the method: its result, or its own refusal. Throws only internal errors. */
  private async execute(run: BoundOperation, device: Device, req: RequestEnvelope): Promise<Answer> {
    try {
      const result = await run(device, req);
      return {
        ok: true,
        b: JSON.stringify(result, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
      };
    } catch (err) {
      if (!(err instanceof AppError) || err.status >= 500) throw err;
      return { ok: false, b: JSON.stringify({ code: err.code, message: err.message }) };
    }
  }

  /**
   * The ledger's idempotency rule (`Ledger.idempotent`, src/ledger/idempotency.ts) for a device's
   * key: keys are per device (`device-request:<device id>:<k>` among its account's keys, apart
   * from the `device:<k>` its `pay` and `invoice` pass on), the request is the method and its
   * params. The first result under a key is kept (its JSON text is what the key's record refers
   * to) before it is sent, and a retry of the same request gets it without running the method;
   * another request under the key is refused (IDEMPOTENCY_CONFLICT) before its counter is taken,
   * so it changes nothing. A refusal by the method is not kept: the key stays free and the request
   * can be retried under it (e.g. after a top-up). Answers kept before this rule (`didem!`) are
   * still honoured until they are pruned.
   */
  private async executeOnce(
    k: string,
    params: Record<string, unknown>,
    take: () => Promise<void>,
    run: BoundOperation,
    device: Device,
    req: RequestEnvelope,
  ): Promise<Answer> {
    const earlier = await this.kept(legacyKey(device.deviceId, k));
    if (earlier !== undefined) {
      if (earlier.f !== undefined && earlier.f !== requestFingerprint(req.m, params))
        throw new DeviceError(
          DeviceErrorCode.IDEMPOTENCY_CONFLICT,
          'this idempotency key was used for a different request',
        );
      void take();
      return { ok: earlier.ok, b: earlier.b };
    }
    return this.ledger.idempotent(
      { accountId: device.accountId, key: requestKey(device.deviceId, k), operation: req.m, request: params },
      async (records) => {
        await take();
        const answer = await this.execute(run, device, req);
        // A result is kept before it is given; a refusal leaves the key free.
        if (answer.ok) await this.ledger.putRecords(records(answer.b));
        return answer;
      },
      (b) => {
        void take();
        return { ok: true, b };
      },
    );
  }

  /**
   * An answer kept under a key before device keys followed `Ledger.idempotent`, if any within the
   * retention window. Refusals kept before they stopped being kept are ignored: under the rule a
   * refusal leaves the key free.
   */
  private async kept(key: string): Promise<Kept | undefined> {
    const stored = await this.ledger.getRecord(key);
    if (stored === undefined) return undefined;
    const kept = keptCodec.decode(stored);
    if (!kept.ok || this.expired(kept)) return undefined;
    return kept;
  }

  private expired(kept: Kept): boolean {
    return kept.at !== undefined && kept.at < this.now() - this.retentionMs;
  }

  /**
   * Deletes the answers kept before this rule (`didem!`) once older than the retention window
   * (records kept before fingerprints carry no time and stay). Returns how many were deleted.
   * Each key is re-read and deleted in its own turn of the key's queue. New answers are the
   * ledger's idempotency records, which follow its retention.
   */
  async pruneKeptAnswers(batch = 500): Promise<number> {
    let deleted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.ledger.listRecords(KEPT, {
        limit: batch,
        ...(after !== undefined ? { after } : {}),
      });
      for (const r of page) {
        const kept = keptCodec.decode(r.value);
        if (!this.expired(kept) && kept.ok) continue;
        const gone = await this.keyed.run(r.key, async () => {
          const now = await this.ledger.getRecord(r.key);
          if (now === undefined) return false;
          const k = keptCodec.decode(now);
          if (!this.expired(k) && k.ok) return false;
          await this.ledger.putRecords([{ key: r.key, value: null }]);
          return true;
        });
        if (gone) deleted += 1;
      }
      if (page.length < batch) return deleted;
      after = page[page.length - 1]!.key;
    }
  }

  private async authenticate(req: RequestEnvelope): Promise<Device> {
    const known = await this.registry.find(req.d);
    if (!known) throw new DeviceError(DeviceErrorCode.UNKNOWN_DEVICE, 'no device with this id');
    if (known.state !== 'active')
      throw new DeviceError(DeviceErrorCode.DEVICE_REVOKED, 'this device was revoked');
    const { s, ...unsigned } = req;
    const digest = requestDigest(unsigned);
    // A worker that died answers nothing: verify here rather than turn it into an unreadable envelope.
    const ok = await this.verifier.verify(digest, req.d, s).catch(() => this.inline.verify(digest, req.d, s));
    if (!ok) throw new DeviceError(DeviceErrorCode.BAD_SIGNATURE, 'the signature does not verify');
    // It may have been revoked while the signature was being checked.
    const device = this.registry.get(req.d);
    if (!device || device.state !== 'active')
      throw new DeviceError(DeviceErrorCode.DEVICE_REVOKED, 'this device was revoked');
    return device;
  }

  private reply(req: RequestEnvelope, ok: boolean, body: string): BridgeReply {
    return {
      status: 200,
      envelope: signResponse(
        { d: req.d, c: req.c, t: Math.floor(this.now() / 1000), ok, b: body },
        this.gatewayKeyHex,
      ),
    };
  }
}
