import { connect, createServer, type Server, type Socket } from 'node:net';

interface Relay {
  client: Socket;
  upstream: Socket;
  held: Buffer[];
}

/**
 * A TCP relay in front of a server (LND's gRPC port) whose client → server direction can be held:
 * while held, what the client sends stays here. `cut` then drops every connection together with
 * what it held, so a test can make sure a request never reaches the server (e.g. kill the caller
 * while its request is held, then cut). New connections pass freely after a cut.
 */
export class TcpGate {
  private readonly relays = new Set<Relay>();
  private holding = false;

  private constructor(
    private readonly server: Server,
    readonly address: string,
  ) {}

  static async open(target: string): Promise<TcpGate> {
    const [host, port] = splitHostPort(target);
    const server = createServer((client) => gate.accept(client, host, port));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('the gate has no TCP address');
    const gate = new TcpGate(server, `127.0.0.1:${addr.port}`);
    return gate;
  }

  /** From now on, bytes from clients are kept here instead of reaching the server. */
  hold(): void {
    this.holding = true;
  }

  /** Drops every open connection and everything held for it; new connections pass again. */
  cut(): void {
    for (const r of this.relays) {
      r.held = [];
      r.client.destroy();
      r.upstream.destroy();
    }
    this.relays.clear();
    this.holding = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, host: string, port: number): void {
    const upstream = connect(port, host);
    const relay: Relay = { client, upstream, held: [] };
    this.relays.add(relay);
    const drop = () => {
      this.relays.delete(relay);
      relay.held = [];
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (this.holding) relay.held.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', drop);
    upstream.on('close', drop);
    client.on('error', drop);
    upstream.on('error', drop);
  }
}

function splitHostPort(target: string): [string, number] {
  const i = target.lastIndexOf(':');
  return [target.slice(0, i), Number(target.slice(i + 1))];
}
