import { AppError } from '../domain/errors.js';
import { KeyedQueue } from '../domain/keyed-queue.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../payments/service.js';
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
}

/** What the transport sends back: a signed envelope, or (when no device can be named) an error. */
export type BridgeReply =
  { status: 200; envelope: ResponseEnvelope } | { status: number; error: { code: string; message: string } };

const idemKey = (deviceId: string, k: string): string => `didem!${deviceId}!${k}`;

/** What a method answered (`b` is the JSON text of the result or of the refusal), as kept under a key. */
interface Answer {
  ok: boolean;
  b: string;
}

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
  private readonly keyed = new KeyedQueue();

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
  }

  async handle(raw: unknown): Promise<BridgeReply> {
    let req: RequestEnvelope;
    let device: Device;
    try {
      req = parseRequest(raw);
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
      const run = op(paramsOf(req));
      // Every check passed, in this same tick: only now is the counter taken. Not awaited here:
      // the group commit keeps write order, so the request's own writes are never durable before
      // its counter. The answer waits for it (below).
      counted = this.registry.acceptCounter(device.deviceId, req.c);
      const k = req.k;
      // One request per idempotency key at a time: a retry sent while the first still runs waits
      // for it, and gets its answer instead of running the method again.
      const answer =
        k === undefined
          ? await this.execute(run, device, req)
          : await this.keyed.run(idemKey(device.deviceId, k), () => this.executeOnce(k, run, device, req));
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

  /** The first answer under an idempotency key, kept: a retry gets it without running the method. */
  private async executeOnce(
    k: string,
    run: BoundOperation,
    device: Device,
    req: RequestEnvelope,
  ): Promise<Answer> {
    const key = idemKey(device.deviceId, k);
    const earlier = await this.ledger.getRecord(key);
    if (earlier !== undefined) return JSON.parse(earlier) as Answer;
    const answer = await this.execute(run, device, req);
    const kept = this.ledger.putRecords([{ key, value: JSON.stringify(answer) }]);
    // A result must be kept before it is given; a refusal not kept is only decided again.
    if (answer.ok) await kept;
    else await kept.catch(() => undefined);
    return answer;
  }

  private async authenticate(req: RequestEnvelope): Promise<Device> {
    const known = this.registry.get(req.d);
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
