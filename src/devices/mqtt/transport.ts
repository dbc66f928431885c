import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { AppError } from '../../domain/errors.js';
import type { Logger } from '../../domain/logger.js';
import type { DeviceBridge } from '../bridge.js';
import type { EventEnvelope } from '../envelope.js';
import { deviceOfTopic, topics } from './topics.js';

/** How the gateway's client signs in, and whether it shares the device requests with other instances. */
export interface MqttTransportOptions {
  username?: string;
  password?: string;
  /**
   * Take requests through the MQTT 5 shared subscription of this group (an external broker that
   * several instances share): each request reaches one instance of the group. Without it the
   * client subscribes to every device's requests itself (the embedded broker, MQTT 3.1.1).
   */
  shareGroup?: string;
}

/**
 * Carries device envelopes over MQTT (QoS 1): requests from `coulomb/d/+/req` go to the bridge,
 * signed answers to the device's `res` topic, pushed events to its `evt` topic. Devices connect
 * with persistent sessions, so the broker keeps QoS 1 messages while they are offline; each
 * event says until when it is worth acting on. An answer or an event goes to the device's own
 * topic on the broker, whichever instance produced it: nothing depends on which instance took the
 * request.
 */
export class MqttTransport {
  private constructor(
    private readonly client: MqttClient,
    private readonly bridge: DeviceBridge,
    private readonly log: Logger,
  ) {}

  static async connect(
    url: string,
    bridge: DeviceBridge,
    log: Logger,
    options: MqttTransportOptions = {},
  ): Promise<MqttTransport> {
    const group = options.shareGroup;
    const client = await mqtt.connectAsync(url, {
      // Unique per connection: instances on several hosts (or containers, all pid 1) must not
      // take each other's session over.
      clientId: `coulomb-gateway-${randomBytes(8).toString('hex')}`,
      clean: true,
      reconnectPeriod: 1000,
      // Shared subscriptions are MQTT 5's; the embedded broker (aedes) speaks 3.1.1.
      ...(group !== undefined ? { protocolVersion: 5 as const } : {}),
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
    });
    const t = new MqttTransport(client, bridge, log);
    client.on('message', (topic, payload) => void t.onRequest(topic, payload));
    client.on('error', (err) => log.warn({ err: err.message }, 'MQTT client error'));
    const filter = group !== undefined ? topics.sharedRequests(group) : topics.allRequests;
    try {
      await client.subscribeAsync(filter, { qos: 1 });
    } catch (err) {
      await client.endAsync(true);
      throw new MqttSubscribeError(filter, err);
    }
    return t;
  }

  /** Publishes a signed event to a device (QoS 1; queued by the broker while the device is away). */
  async pushEvent(event: EventEnvelope): Promise<void> {
    await this.client.publishAsync(topics.event(event.d), JSON.stringify(event), { qos: 1 });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }

  private async onRequest(topic: string, payload: Buffer): Promise<void> {
    const where = deviceOfTopic(topic);
    if (!where) return;
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString('utf8'));
    } catch {
      raw = undefined;
    }
    // The envelope must come from the device whose topic carries it.
    const claimed = typeof raw === 'object' && raw !== null ? (raw as { d?: unknown }).d : undefined;
    const reply =
      claimed === where.deviceId
        ? await this.bridge.handle(raw)
        : {
            status: 400,
            error: { code: 'BAD_ENVELOPE', message: 'the envelope’s device id does not match its topic' },
          };
    const body = 'envelope' in reply ? reply.envelope : { error: reply.error };
    await this.client
      .publishAsync(topics.response(where.deviceId), JSON.stringify(body), { qos: 1 })
      .catch((err: unknown) => this.log.warn({ err }, 'could not publish a device response'));
  }
}

/** The broker refused the gateway's subscription to device requests (e.g. no shared subscriptions). */
export class MqttSubscribeError extends AppError {
  constructor(filter: string, cause: unknown) {
    super(
      'MQTT_SUBSCRIBE_REFUSED',
      `the MQTT broker refused the subscription ${filter} (a broker without MQTT 5 shared subscriptions?)`,
      500,
      { filter },
    );
    this.cause = cause;
  }
}
