import type { Logger } from '../payments/service.js';
import { signEvent, type EventEnvelope } from './envelope.js';
import type { DeviceRegistry } from './registry.js';

/** Where signed events go: MQTT today; anything that can carry an envelope to a device. */
export interface EventSink {
  pushEvent(event: EventEnvelope): Promise<void>;
}

/** Signs events for devices (sequence numbered per device) and hands them to the transports. */
export class DeviceEvents {
  private readonly sinks: EventSink[] = [];
  private readonly listeners: ((e: EventEnvelope) => void)[] = [];

  constructor(
    private readonly registry: DeviceRegistry,
    private readonly gatewayKeyHex: string,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  addSink(sink: EventSink): void {
    this.sinks.push(sink);
  }

  /** In-process observers (tests, the HTTP long-poll of later versions). */
  onEvent(listener: (e: EventEnvelope) => void): () => void {
    this.listeners.push(listener);
    return () => this.listeners.splice(this.listeners.indexOf(listener), 1);
  }

  /** Signs and sends; `ttlSeconds` tells the device until when the event is worth acting on. */
  async push(
    deviceId: string,
    type: string,
    data: Record<string, unknown>,
    ttlSeconds = 300,
  ): Promise<EventEnvelope> {
    const t = Math.floor(this.now() / 1000);
    const body = JSON.stringify({ ...data, exp: t + ttlSeconds });
    const event = signEvent(
      { d: deviceId, n: this.registry.nextEventSeq(deviceId), t, e: type, b: body },
      this.gatewayKeyHex,
    );
    for (const l of this.listeners) l(event);
    await Promise.all(
      this.sinks.map((s) =>
        s
          .pushEvent(event)
          .catch((err: unknown) => this.log.warn({ err, deviceId, type }, 'could not push a device event')),
      ),
    );
    return event;
  }
}
