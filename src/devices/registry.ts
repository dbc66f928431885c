import { createHash, randomBytes } from 'node:crypto';
import type { Ledger, SideRecords } from '../ledger/ledger.js';
import { isXOnlyKey } from '../crypto/bip340.js';
import { Type } from '@sinclair/typebox';
import { KeyedQueue } from '../domain/keyed-queue.js';
import { CappedSlots } from '../domain/slots.js';
import { recordCodec, type RecordCodec } from '../records/codec.js';
import { PREFIXES } from '../records/prefixes.js';
import type { DeviceCounterStore } from './counters.js';
import { connectDigest, enrollDigest, schnorrVerify } from './envelope.js';
import { DeviceError, DeviceErrorCode } from './errors.js';
import type { Device, DeviceStatus, Enrollment } from './types.js';

const devKey = (id: string): string => `${PREFIXES.device.prefix}${id}`;
const enrKey = (hash: string): string => `${PREFIXES.enrollment.prefix}${hash}`;

export const deviceCodec: RecordCodec<Device> = recordCodec(
  'device',
  Type.Object({
    deviceId: Type.String(),
    accountId: Type.String(),
    name: Type.String(),
    state: Type.Union([Type.Literal('active'), Type.Literal('revoked')]),
    lastCounter: Type.Number(),
    lastEventSeq: Type.Number(),
    createdAt: Type.Number(),
    revokedAt: Type.Optional(Type.Number()),
    lastSeenAt: Type.Optional(Type.Number()),
  }),
);
/** How often at most a device's last-seen time is written when nothing else of it changes. */
export const SEEN_WRITE_MS = 60_000;
const enrollmentCodec: RecordCodec<Enrollment> = recordCodec(
  'enrollment',
  Type.Object({
    codeHash: Type.String(),
    accountId: Type.String(),
    name: Type.String(),
    expiresAt: Type.Number(),
    usedBy: Type.Optional(Type.String()),
  }),
);
const HEX64 = /^[0-9a-f]{64}$/;
const replayed = (counter: number, last: number): DeviceError =>
  new DeviceError(DeviceErrorCode.REPLAYED, `counter ${counter} is not above ${last}`, { lastCounter: last });
const sha256hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
/** Crockford-like alphabet without look-alikes, 4-4-4 groups: about 60 bits. */
const ALPHABET = '23456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * The devices of this gateway and their enrollment codes, kept as ledger side records. Devices
 * are in memory (their counters are taken synchronously); enrollment codes stay on disk and are
 * read by their hash when a device presents one.
 */
export class DeviceRegistry {
  private readonly devices = new Map<string, Device>();
  /** One use of an enrollment code at a time. */
  private readonly enrolling = new KeyedQueue();
  /** A device id is taken once: by its registered device, or by its registration in progress. */
  private readonly ids = new CappedSlots(1, (deviceId) => (this.devices.has(deviceId) ? 1 : 0));

  /** Devices connected to the embedded broker now, with their number of connections. */
  private readonly connections = new Map<string, number>();
  /** Requests accepted per device since the start (in memory: one number per device). */
  private readonly requests = new Map<string, number>();

  constructor(
    private readonly ledger: Ledger,
    private readonly now: () => number = Date.now,
    /** The counters every instance shares (PostgreSQL); none with the embedded store. */
    private readonly counters?: DeviceCounterStore,
  ) {}

  async load(): Promise<void> {
    for (const r of await this.ledger.listRecords(PREFIXES.device.prefix)) {
      const d = deviceCodec.decode(r.value);
      this.devices.set(d.deviceId, d);
    }
  }

  /** Registers a device key for an account (the operator provisioned the key, e.g. from a mnemonic). */
  async register(input: { deviceId: string; accountId: string; name: string }): Promise<Device> {
    if (!isXOnlyKey(input.deviceId))
      throw new DeviceError(
        DeviceErrorCode.INVALID_PARAMS,
        'deviceId must be a BIP340 x-only public key (64 hex)',
      );
    const account = await this.ledger.requireAccount(input.accountId);
    if (account.kind === 'system' || account.kind === 'operator')
      throw new DeviceError(DeviceErrorCode.INVALID_PARAMS, 'a device needs an account of its own kind');
    // Registered on another instance since this one started (a shared store): taken there.
    if (!this.devices.has(input.deviceId)) await this.find(input.deviceId);
    const slot = this.ids.take(input.deviceId);
    if (!slot) throw new DeviceError(DeviceErrorCode.INVALID_PARAMS, 'this device is already registered');
    const d: Device = {
      deviceId: input.deviceId,
      accountId: input.accountId,
      name: input.name,
      state: 'active',
      lastCounter: 0,
      lastEventSeq: 0,
      createdAt: this.now(),
    };
    try {
      await this.save(d);
      this.devices.set(d.deviceId, d);
    } finally {
      slot.release();
    }
    return { ...d };
  }

  /** A one-time enrollment code for an account; shown once, stored as its hash. */
  async createEnrollment(
    accountId: string,
    name: string,
    ttlSeconds = 3600,
  ): Promise<{ code: string; expiresAt: number }> {
    await this.ledger.requireAccount(accountId);
    const bytes = randomBytes(12);
    let code = '';
    for (let i = 0; i < 12; i++) code += ALPHABET[bytes[i]! % ALPHABET.length];
    code = `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8)}`;
    const e: Enrollment = {
      codeHash: sha256hex(code),
      accountId,
      name,
      expiresAt: this.now() + ttlSeconds * 1000,
    };
    await this.ledger.putRecords([{ key: enrKey(e.codeHash), value: enrollmentCodec.encode(e) }]);
    return { code, expiresAt: e.expiresAt };
  }

  /** A device enrolls its own key with a code: proves the key by signing the code. */
  async enroll(input: { deviceId: string; code: string; signature: string }): Promise<Device> {
    const hash = sha256hex(input.code.trim().toUpperCase());
    return this.enrolling.run(hash, () => this.enrollOnce(hash, input));
  }

  private async enrollOnce(
    hash: string,
    input: { deviceId: string; code: string; signature: string },
  ): Promise<Device> {
    // Looked up by the code's hash: the code itself is never stored, and a lookup's timing tells
    // nothing about the codes of other enrollments.
    const raw = await this.ledger.getRecord(enrKey(hash));
    const e = raw === undefined ? undefined : enrollmentCodec.decode(raw);
    const invalid = new DeviceError(
      DeviceErrorCode.ENROLLMENT_INVALID,
      'the enrollment code is unknown, used or expired',
    );
    if (!e || e.usedBy !== undefined || e.expiresAt <= this.now()) throw invalid;
    if (
      !HEX64.test(input.deviceId) ||
      !schnorrVerify(
        enrollDigest(input.deviceId, input.code.trim().toUpperCase()),
        input.deviceId,
        input.signature,
      )
    )
      throw new DeviceError(DeviceErrorCode.BAD_SIGNATURE, 'the enrollment signature does not verify');
    e.usedBy = input.deviceId;
    await this.ledger.putRecords([{ key: enrKey(e.codeHash), value: enrollmentCodec.encode(e) }]);
    return this.register({ deviceId: input.deviceId, accountId: e.accountId, name: e.name });
  }

  /**
   * May this client connect to the MQTT broker as this device? Its password must be a signature
   * of the device key over (device id, t) with t (the username) within `maxSkewSeconds` of now.
   */
  mayConnect(
    deviceId: string,
    username: string | undefined,
    password: string | undefined,
    maxSkewSeconds = 300,
  ): boolean {
    const d = this.devices.get(deviceId);
    if (!d || d.state !== 'active' || username === undefined || password === undefined) return false;
    if (!/^[0-9]{1,15}$/.test(username)) return false;
    const t = Number(username);
    if (Math.abs(Math.floor(this.now() / 1000) - t) > maxSkewSeconds) return false;
    return schnorrVerify(connectDigest(deviceId, t), deviceId, password);
  }

  async revoke(deviceId: string): Promise<Device> {
    await this.find(deviceId);
    const d = this.must(deviceId);
    // Every instance refuses it from its next request on, whatever its memory says.
    await this.counters?.revoke(deviceId);
    if (d.state === 'revoked') return { ...d };
    await this.markRevoked(d);
    return { ...d };
  }

  private async markRevoked(d: Device): Promise<void> {
    d.state = 'revoked';
    d.revokedAt = this.now();
    await this.save(d);
  }

  get(deviceId: string): Device | undefined {
    const d = this.devices.get(deviceId);
    return d ? { ...d } : undefined;
  }

  /**
   * A device, from memory; with a counter store shared by several instances, a device this
   * instance does not know yet (registered on another one since it started) is read from the
   * store and kept. One process has every device in memory: no read.
   */
  async find(deviceId: string): Promise<Device | undefined> {
    const known = this.get(deviceId);
    if (known || !this.counters || !HEX64.test(deviceId)) return known;
    const raw = await this.ledger.getRecord(devKey(deviceId));
    if (raw === undefined) return undefined;
    if (!this.devices.has(deviceId)) this.devices.set(deviceId, deviceCodec.decode(raw));
    return this.get(deviceId);
  }

  list(accountId?: string): Device[] {
    return [...this.devices.values()]
      .filter((d) => accountId === undefined || d.accountId === accountId)
      .map((d) => ({ ...d }));
  }

  /**
   * Accepts a request counter: it must be above the last one this instance knows (checked now,
   * throws REPLAYED). `claimed` resolves once the counter is taken: at once with no shared counter
   * store; otherwise once the store took it for every instance (it rejects with REPLAYED when the
   * store holds a counter as high, e.g. the request was replayed to another instance). `durable`
   * resolves once the device record with the new counter is written; it is queued before
   * `claimed` resolves, so writes made after that land in the same or a later batch, and anything
   * the request changes is never on disk without it.
   */
  acceptCounter(deviceId: string, counter: number): { claimed: Promise<void>; durable: Promise<void> } {
    const d = this.must(deviceId);
    if (counter <= d.lastCounter) throw replayed(counter, d.lastCounter);
    if (!this.counters) {
      const durable = this.took(d, counter);
      return { claimed: Promise.resolve(), durable };
    }
    let saved: Promise<void> = Promise.resolve();
    const claimed = this.counters.advance(deviceId, counter).then(async (claim) => {
      if (claim.accepted) {
        saved = this.took(d, counter);
        return;
      }
      // Another instance took it (or a higher one), or revoked the device: this copy catches up.
      d.lastCounter = Math.max(d.lastCounter, claim.last);
      if (!claim.revoked) throw replayed(counter, claim.last);
      if (d.state === 'active') await this.markRevoked(d);
      throw new DeviceError(DeviceErrorCode.DEVICE_REVOKED, 'this device was revoked');
    });
    const durable = claimed.then(() => saved);
    return { claimed, durable };
  }

  /** Records a counter taken: in memory at once, on disk with the returned write. */
  private took(d: Device, counter: number): Promise<void> {
    d.lastCounter = Math.max(d.lastCounter, counter);
    // The record is written anyway: it carries the time too.
    d.lastSeenAt = this.now();
    this.requests.set(d.deviceId, (this.requests.get(d.deviceId) ?? 0) + 1);
    return this.save(d);
  }

  /**
   * The device was heard from (e.g. it connected): its last-seen time is written when the stored
   * one is older than SEEN_WRITE_MS, so a chatty device costs at most a write a minute.
   */
  async seen(deviceId: string): Promise<void> {
    const d = this.devices.get(deviceId);
    if (!d) return;
    const now = this.now();
    if (d.lastSeenAt !== undefined && now - d.lastSeenAt < SEEN_WRITE_MS) return;
    d.lastSeenAt = now;
    await this.save(d);
  }

  /** A connection of the device to the embedded broker opened (`up`) or closed. */
  connection(deviceId: string, up: boolean): void {
    const n = (this.connections.get(deviceId) ?? 0) + (up ? 1 : -1);
    if (n > 0) this.connections.set(deviceId, n);
    else this.connections.delete(deviceId);
  }

  /**
   * Devices in id order, a page after `after`: from disk (the device records' keys) for all of
   * them; an account's from memory. With whether each is online and its requests since start.
   */
  async page(options: { after?: string; limit: number; accountId?: string }): Promise<DeviceStatus[]> {
    const { after, limit, accountId } = options;
    let ids: string[];
    if (accountId !== undefined) {
      ids = [...this.devices.values()]
        .filter((d) => d.accountId === accountId && (after === undefined || d.deviceId > after))
        .map((d) => d.deviceId)
        .sort()
        .slice(0, limit);
    } else {
      const prefix = PREFIXES.device.prefix;
      const records = await this.ledger.listRecords(prefix, {
        limit,
        ...(after !== undefined ? { after: devKey(after) } : {}),
      });
      ids = records.map((r) => r.key.slice(prefix.length));
    }
    const out: DeviceStatus[] = [];
    for (const id of ids) {
      if (!this.devices.has(id)) await this.find(id); // registered on another instance
      const d = this.devices.get(id);
      if (d)
        out.push({
          ...d,
          online: this.connections.has(id),
          requestsSinceStart: this.requests.get(id) ?? 0,
        });
    }
    return out;
  }

  /**
   * The next event sequence number of a device, and the device record that carries it: the caller
   * writes that record in the same batch as the event, so a number is never handed out twice.
   */
  takeEventSeq(deviceId: string): { n: number; record: SideRecords[number] } {
    const d = this.must(deviceId);
    d.lastEventSeq += 1;
    return { n: d.lastEventSeq, record: { key: devKey(d.deviceId), value: deviceCodec.encode(d) } };
  }

  /** Whether event numbers come from a counter store shared by several instances (`claimEventSeq`). */
  get sharedEventSeq(): boolean {
    return this.counters !== undefined;
  }

  /**
   * `takeEventSeq` when several instances share a counter store: the number is the store's (one
   * above the last any instance handed out), so it waits for it.
   */
  async claimEventSeq(deviceId: string): Promise<{ n: number; record: SideRecords[number] }> {
    const d = this.must(deviceId);
    if (!this.counters) return this.takeEventSeq(deviceId);
    const n = await this.counters.nextEventSeq(deviceId, d.lastEventSeq + 1);
    d.lastEventSeq = Math.max(d.lastEventSeq, n);
    return { n, record: { key: devKey(d.deviceId), value: deviceCodec.encode(d) } };
  }

  private must(deviceId: string): Device {
    const d = this.devices.get(deviceId);
    if (!d) throw new DeviceError(DeviceErrorCode.UNKNOWN_DEVICE, 'no device with this id');
    return d;
  }

  private save(d: Device): Promise<void> {
    return this.ledger.putRecords([{ key: devKey(d.deviceId), value: deviceCodec.encode(d) }]);
  }
}
