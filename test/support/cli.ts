import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs the `coulomb` CLI against a gateway URL with the operator key; parses its JSON output. */
export function cliAgainst(url: () => string, operatorKey: string) {
  return async (...args: string[]): Promise<Record<string, unknown>> => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', ...args], {
      env: { ...process.env, COULOMB_URL: url(), COULOMB_OPERATOR_KEY: operatorKey },
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  };
}
