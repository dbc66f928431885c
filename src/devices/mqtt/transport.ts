import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from '../../domain/logger.js';
import type { DeviceBridge } from '../bridge.js';
import type { EventEnvelope } from '../envelope.js';
import { deviceOfTopic, topics } from './topics.js';

/**
 * Carries device envelopes over MQTT (QoS 1): requests from `coulomb/d/+/req` go to the bridge,
 * signed answers to the device's `res` topic, pushed events to its `evt` topic. Devices connect
 * with persistent sessions, so the broker keeps QoS 1 messages while they are offline; each
 * event says until when it is worth acting on.
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
    credentials: { username?: string; password?: string } = {},
  ): Promise<MqttTransport> {
    const client = await mqtt.connectAsync(url, {
      clientId: `coulomb-gateway-${process.pid}`,
      clean: true,
      reconnectPeriod: 1000,
      ...(credentials.username !== undefined ? { username: credentials.username } : {}),
      ...(credentials.password !== undefined ? { password: credentials.password } : {}),
    });
    const t = new MqttTransport(client, bridge, log);
    client.on('message', (topic, payload) => void t.onRequest(topic, payload));
    client.on('error', (err) => log.warn({ err: err.message }, 'MQTT client error'));
    await client.subscribeAsync(topics.allRequests, { qos: 1 });
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
