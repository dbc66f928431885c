import { createHash, randomBytes } from 'node:crypto';
import * as noble from '@noble/secp256k1';
import mqtt, { type MqttClient } from 'mqtt';
import {
  connectDigest,
  eventDigest,
  PROTOCOL_VERSION,
  requestDigest,
  responseDigest,
  type EventEnvelope,
  type ResponseEnvelope,
} from '../envelope.js';

/** A signed response, or the plain error of an envelope the gateway could not attribute. */
export type Answer = ResponseEnvelope | { error: { code: string; message: string } };

noble.hashes.sha256 = (msg) => new Uint8Array(createHash('sha256').update(msg).digest());

/**
 * A virtual device over MQTT that signs like a constrained client would (@noble/secp256k1),
 * pins the gateway id, and checks every response and event signature.
 */
export class VirtualDevice {
  readonly id: string;
  readonly events: EventEnvelope[] = [];
  counter = 0;
  private readonly waiting = new Map<number, (r: Answer) => void>();
  private readonly eventWaiters: ((e: EventEnvelope) => void)[] = [];
  /** The highest event number received (kept across reconnections, as a device keeps it in flash). */
  private lastEventSeq = 0;
  private client!: MqttClient;

  constructor(
    private readonly secretKey: Uint8Array,
    private readonly gatewayId: string,
  ) {
    this.id = Buffer.from(noble.schnorr.getPublicKey(secretKey)).toString('hex');
  }

  static random(gatewayId: string): VirtualDevice {
    return new VirtualDevice(new Uint8Array(randomBytes(32)), gatewayId);
  }

  async connect(url: string): Promise<void> {
    // The connect token: username = t, password = BIP340 signature over (device id, t).
    const t = Math.floor(Date.now() / 1000);
    const password = Buffer.from(
      await noble.schnorr.signAsync(
        connectDigest(this.id, t),
        this.secretKey,
        new Uint8Array(randomBytes(32)),
      ),
    ).toString('hex');
    this.client = await mqtt.connectAsync(url, {
      clientId: this.id,
      clean: false,
      reconnectPeriod: 0,
      username: String(t),
      password,
    });
    this.client.on('message', (topic, payload) => {
      const msg = JSON.parse(payload.toString('utf8')) as ResponseEnvelope & EventEnvelope;
      const plain = (msg as { error?: { code: string; message: string } }).error;
      if (topic.endsWith('/res') && plain) {
        // An envelope the gateway could not attribute: the answer is unsigned and names no counter.
        for (const [c, w] of [...this.waiting]) {
          this.waiting.delete(c);
          w({ error: plain });
        }
      } else if (topic.endsWith('/res') && typeof msg.c === 'number') {
        if (!this.verify(responseDigest(strip(msg)), msg)) return;
        this.waiting.get(msg.c)?.(msg);
        this.waiting.delete(msg.c);
      } else if (topic.endsWith('/evt')) {
        if (!this.verify(eventDigest(strip(msg)), msg)) return;
        // PROTOCOL.md: events whose number is not above the last one processed are replays.
        if (msg.n <= this.lastEventSeq) return;
        this.lastEventSeq = msg.n;
        this.events.push(msg);
        for (const w of this.eventWaiters.splice(0)) w(msg);
      }
    });
    await this.client.subscribeAsync([`coulomb/d/${this.id}/res`, `coulomb/d/${this.id}/evt`], { qos: 1 });
  }

  /** Signs and sends a request; resolves with the verified response. */
  async call(
    method: string,
    params: object | string,
    options: { k?: string; counter?: number } = {},
  ): Promise<ResponseEnvelope> {
    const c = options.counter ?? ++this.counter;
    const answer = await this.send(await this.sign(method, params, c, options.k), c);
    if ('error' in answer) throw new Error(`gateway refused: ${answer.error.code}`);
    return answer;
  }

  /** A signed request envelope, not sent (tests tamper with it). */
  async sign(
    method: string,
    params: object | string,
    c: number,
    k?: string,
  ): Promise<Record<string, unknown>> {
    const unsigned = {
      v: PROTOCOL_VERSION,
      d: this.id,
      c,
      t: Math.floor(Date.now() / 1000),
      m: method,
      p: typeof params === 'string' ? params : JSON.stringify(params),
      ...(k ? { k } : {}),
    };
    const s = Buffer.from(
      await noble.schnorr.signAsync(requestDigest(unsigned), this.secretKey, new Uint8Array(randomBytes(32))),
    ).toString('hex');
    return { ...unsigned, s };
  }

  /** Publishes any envelope (tests of forged or tampered ones) and waits for the answer to counter `c`. */
  async send(envelope: object, c: number, timeoutMs = 10_000): Promise<Answer> {
    const answer = new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no response to counter ${c}`)), timeoutMs);
      this.waiting.set(c, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
    await this.client.publishAsync(`coulomb/d/${this.id}/req`, JSON.stringify(envelope), { qos: 1 });
    return answer;
  }

  /** Resolves with the next event of this type (or one already received and not yet taken). */
  nextEvent(type: string, timeoutMs = 30_000): Promise<EventEnvelope> {
    const have = this.events.find((e) => e.e === type);
    if (have) {
      this.events.splice(this.events.indexOf(have), 1);
      return Promise.resolve(have);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${type} event`)), timeoutMs);
      const wait = (e: EventEnvelope): void => {
        if (e.e !== type) return void this.eventWaiters.push(wait);
        clearTimeout(timer);
        this.events.splice(this.events.indexOf(e), 1);
        resolve(e);
      };
      this.eventWaiters.push(wait);
    });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }

  private verify(digest: Uint8Array, e: { g: string; d: string; s: string }): boolean {
    return (
      e.g === this.gatewayId &&
      e.d === this.id &&
      noble.schnorr.verify(Buffer.from(e.s, 'hex'), digest, Buffer.from(this.gatewayId, 'hex'))
    );
  }
}

function strip<T extends { s: string }>(e: T): Omit<T, 's'> {
  const copy: Partial<T> = { ...e };
  delete copy.s;
  return copy as Omit<T, 's'>;
}
