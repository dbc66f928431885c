import { AppError } from '../domain/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import type { Logger } from '../payments/service.js';
import { requestDigest, signResponse, type RequestEnvelope, type ResponseEnvelope } from './envelope.js';
import { DeviceError, DeviceErrorCode } from './errors.js';
import { paramsOf, parseRequest } from './parse.js';
import type { DeviceRegistry } from './registry.js';
import type { Device } from './types.js';
import { VerifyPool } from './verify-pool.js';

/** One device method: gets the authenticated device and its params, returns the JSON result. */
export type DeviceOperation = (
  device: Device,
  params: Record<string, unknown>,
  request: RequestEnvelope,
) => Promise<unknown>;

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

/**
 * The device side of the gateway: checks a request envelope (shape, device, signature, clock,
 * counter — in that order, and nothing changes when one fails), runs the method, and answers with
 * a response signed by the gateway's key. Transports (HTTP, MQTT) only carry the bytes.
 */
export class DeviceBridge {
  private readonly maxSkew: number;
  private readonly now: () => number;
  private readonly inline = new VerifyPool(); // never started: verifies on this thread
  private readonly verifier: Pick<VerifyPool, 'verify'>;

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
      // Not awaited here: the group commit keeps write order, so the request's own writes are never
      // durable before its counter. The answer waits for it (below).
      counted = this.registry.acceptCounter(device.deviceId, req.c);
      if (req.k !== undefined) {
        const earlier = await this.ledger.getRecord(idemKey(device.deviceId, req.k));
        if (earlier !== undefined) {
          const r = JSON.parse(earlier) as { ok: boolean; b: string };
          await counted;
          return this.reply(req, r.ok, r.b);
        }
      }
      const op = this.operations[req.m];
      if (!op) throw new DeviceError(DeviceErrorCode.UNKNOWN_METHOD, `no method ${req.m}`);
      const result = await op(device, paramsOf(req), req);
      const body = JSON.stringify(result, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
      if (req.k !== undefined)
        await this.ledger.putRecords([
          { key: idemKey(device.deviceId, req.k), value: JSON.stringify({ ok: true, b: body }) },
        ]);
      await counted;
      return this.reply(req, true, body);
    } catch (err) {
      let code = 'INTERNAL';
      let message = 'internal error';
      if (err instanceof AppError && err.status < 500) {
        code = err.code;
        message = err.message;
      } else this.log.error({ err, deviceId: device.deviceId, method: req.m }, 'device request failed');
      const body = JSON.stringify({ code, message });
      // Only what the method itself decided is remembered under the idempotency key.
      if (req.k !== undefined && code !== 'REPLAYED' && code !== 'CLOCK_SKEW' && code !== 'INTERNAL')
        await this.ledger
          .putRecords([
            { key: idemKey(device.deviceId, req.k), value: JSON.stringify({ ok: false, b: body }) },
          ])
          .catch(() => undefined);
      await counted?.catch(() => undefined);
      return this.reply(req, false, body);
    }
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
