import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { eventually } from './regtest.js';

/** A real external MQTT broker for tests: Debian's Mosquitto (check-prereqs.sh installs it). */
export interface RunningMosquitto {
  url: string;
  port: number;
  /** Stops the broker (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });

const accepts = (port: number): Promise<true | undefined> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(undefined));
  });

/** Starts Mosquitto on a free port of 127.0.0.1 (anonymous clients, MQTT 3.1.1 and 5) and waits until it listens. */
export async function startMosquitto(): Promise<RunningMosquitto> {
  const port = await freePort();
  const child = spawn('mosquitto', ['-p', String(port)], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let failed: Error | undefined;
  child.once('error', (err) => (failed = err));
  await eventually(
    async () => {
      if (failed) throw failed;
      return accepts(port);
    },
    10_000,
    'mosquitto to accept connections',
  );
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    async stop() {
      if (failed) return;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
