import { createServer, type Server } from 'node:net';
import { Aedes, type Client } from 'aedes';
import { ConfigError } from '../../domain/errors.js';
import { deviceOfTopic } from './topics.js';

export interface EmbeddedBroker {
  url: string;
  /** Credentials of the gateway's own client, which may use every device topic. */
  gatewayUsername: string;
  gatewayPassword: string;
  /**
   * Calls `listener` with a device's id whenever it subscribes to its event topic; devices that
   * subscribed before the first listener came are handed to it at once.
   */
  onDeviceSubscribed(listener: (deviceId: string) => void): void;
  /** Devices connected now, and the messages they have published since the start (for metrics). */
  counts(): { devicesConnected: number; deviceMessages: number };
  close(): Promise<void>;
}

/**
 * The embedded MQTT broker (aedes). The gateway's client (by its credentials) may publish and
 * subscribe anywhere; every other client must use its device id as client id and may only
 * publish to its own request topic and subscribe to its own response and event topics.
 */
export async function startEmbeddedBroker(
  host: string,
  port: number,
  password: string,
  /** Checks a device's connect token (PROTOCOL.md, "MQTT connect"): username = t, password = signature. */
  deviceMayConnect: (deviceId: string, username: string | undefined, password: string | undefined) => boolean,
  /** Told when a device's connection opens (`up`) or closes. */
  presence?: (deviceId: string, up: boolean) => void,
): Promise<EmbeddedBroker> {
  const gatewayUsername = 'coulomb-gateway';
  const gateways = new WeakSet<Client>();
  const broker = await Aedes.createBroker({
    authenticate: (client, username, pass, done) => {
      if (username === gatewayUsername) {
        const ok = pass !== undefined && pass.toString('utf8') === password;
        if (ok) gateways.add(client);
        return done(ok ? null : Object.assign(new Error('bad credentials'), { returnCode: 4 as const }), ok);
      }
      const ok = deviceMayConnect(client.id, username, pass?.toString('utf8'));
      done(
        ok ? null : Object.assign(new Error('not a device of this gateway'), { returnCode: 4 as const }),
        ok,
      );
    },
    authorizePublish: (client, packet, done) => {
      if (client === null || gateways.has(client)) return done(null);
      const t = deviceOfTopic(packet.topic);
      done(t && t.kind === 'req' && t.deviceId === client.id ? null : new Error('not your topic'));
    },
    authorizeSubscribe: (client, sub, done) => {
      if (gateways.has(client)) return done(null, sub);
      const t = deviceOfTopic(sub.topic);
      done(null, t && t.kind !== 'req' && t.deviceId === client.id ? sub : null);
    },
  });
  const subscribed: ((deviceId: string) => void)[] = [];
  /** Devices that subscribed before anyone listened (while the gateway was still starting). */
  let early: string[] | undefined = [];
  broker.on('subscribe', (subscriptions, client) => {
    if (!client || gateways.has(client)) return;
    const own = subscriptions.some((sub) => {
      const t = deviceOfTopic(sub.topic);
      return t !== undefined && t.kind === 'evt' && t.deviceId === client.id;
    });
    if (!own) return;
    if (early) early.push(client.id);
    else for (const l of subscribed) l(client.id);
  });
  let devicesConnected = 0;
  let deviceMessages = 0;
  broker.on('clientReady', (client) => {
    if (gateways.has(client)) return;
    devicesConnected += 1;
    presence?.(client.id, true);
  });
  broker.on('clientDisconnect', (client) => {
    if (gateways.has(client)) return;
    devicesConnected -= 1;
    presence?.(client.id, false);
  });
  broker.on('publish', (_packet, client) => {
    if (client && !gateways.has(client)) deviceMessages += 1;
  });
  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      broker.close();
      reject(
        err.code === 'EADDRINUSE'
          ? new ConfigError(
              `the MQTT port ${host}:${port} is in use (another broker?): set COULOMB_MQTT_PORT, or COULOMB_MQTT_URL to use that broker`,
            )
          : err,
      );
    });
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `mqtt://${host}:${actualPort}`,
    gatewayUsername,
    gatewayPassword: password,
    onDeviceSubscribed(listener) {
      subscribed.push(listener);
      const before = early ?? [];
      early = undefined;
      for (const id of before) listener(id);
    },
    counts: () => ({ devicesConnected: Math.max(0, devicesConnected), deviceMessages }),
    async close() {
      await new Promise<void>((r) => broker.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
