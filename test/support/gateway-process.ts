import type { ChildProcess } from 'node:child_process';
import { listening, spawnGateway } from './gateway-spawn.js';
import { node } from './regtest.js';

/**
 * The real gateway as a child process on alice (admin macaroon given by flags), so tests can
 * kill -9 it and start it again on the same data dir.
 */
export class GatewayProcess {
  private child: ChildProcess | undefined;
  private out = '';

  constructor(
    private readonly dataDir: string,
    private readonly operatorKey: string,
    private readonly env: Record<string, string> = {},
    /** Where the gateway reaches alice's gRPC (a relay in front of it, say); alice's own by default. */
    private readonly lndSocket?: string,
  ) {}

  /** Starts the gateway; resolves with its URL once it listens. */
  start(): Promise<string> {
    const alice = node('alice');
    this.out = '';
    const proc = spawnGateway({
      dataDir: this.dataDir,
      operatorKey: this.operatorKey,
      lnd: {
        socket: this.lndSocket ?? alice.grpcSocket,
        cert: alice.tlsCert,
        macaroon: alice.adminMacaroon,
      },
      logLevel: 'error',
      env: this.env,
    });
    this.child = proc;
    proc.stdout!.on('data', (c: Buffer) => (this.out += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (this.out += c.toString()));
    return listening(proc, () => this.out);
  }

  /** The URL of the embedded MQTT broker of the running gateway (from its banner). */
  async mqttUrl(): Promise<string> {
    for (let i = 0; i < 50; i++) {
      const m = /MQTT (mqtt:\/\/\S+)/.exec(this.out);
      if (m) return m[1]!;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the gateway printed no MQTT URL:\n${this.out}`);
  }

  /** SIGKILL: no shutdown hook runs, nothing is flushed. */
  async kill9(): Promise<void> {
    const proc = this.child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await gone;
  }

  /** Calls the gateway's API with the operator key. */
  async api(
    url: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${this.operatorKey}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }
}
