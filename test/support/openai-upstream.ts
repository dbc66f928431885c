import { spawn, type ChildProcess } from 'node:child_process';

/** Starts the OpenAI-compatible sample upstream as its own process; resolves with its URL. */
export function startUpstreamProcess(
  tokenDelayMs = 2,
): Promise<{ url: string; proc: ChildProcess; stop: () => Promise<void> }> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/sample-upstream/main.ts', '0', String(tokenDelayMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m)
        resolve({
          url: m[1]!,
          proc,
          stop: () =>
            new Promise((r) => {
              if (proc.exitCode !== null) return r();
              proc.once('exit', () => r());
              proc.kill('SIGTERM');
            }),
        });
    });
    proc.once('exit', (code) => reject(new Error(`upstream exited with ${code}`)));
  });
}
