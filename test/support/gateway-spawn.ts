import { spawn, type ChildProcess } from 'node:child_process';

/** Where the gateway reaches LND, as `coulomb start` takes it by flags. */
export interface LndFlags {
  socket: string;
  cert: string;
  macaroon: string;
}

/** Spawns `coulomb start` (from the sources) on the given LND, every listener on a free port. */
export function spawnGateway(o: {
  dataDir: string;
  operatorKey: string;
  lnd: LndFlags;
  logLevel: string;
  env?: Record<string, string>;
  cwd?: string;
  /** The API's address (default: a free port on the default host). */
  host?: string;
  port?: number;
}): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/index.ts',
      'start',
      ...(o.host !== undefined ? ['--host', o.host] : []),
      '--port',
      String(o.port ?? 0),
      '--data-dir',
      o.dataDir,
      '--lnd-socket',
      o.lnd.socket,
      '--lnd-cert',
      o.lnd.cert,
      '--lnd-macaroon',
      o.lnd.macaroon,
    ],
    {
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      env: {
        ...process.env,
        COULOMB_OPERATOR_KEY: o.operatorKey,
        COULOMB_LOG_LEVEL: o.logLevel,
        COULOMB_PROXY_PORT: '0',
        COULOMB_MQTT_PORT: '0',
        COULOMB_SAMPLE_UPSTREAM_PORT: '0',
        ...o.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

/** Resolves with the gateway's URL once its output says it listens; rejects if it exits first. */
export function listening(child: ChildProcess, output: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start:\n${output()}`)), 60_000);
    child.stdout!.on('data', () => {
      const m = /listening on (http:\/\/\S+)/.exec(output());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${code}) during start:\n${output()}`));
    });
  });
}
