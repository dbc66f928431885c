import type { TestProject } from 'vitest/node';
import { RegtestNetwork, type NetworkStatus } from '../../src/regtest/network.js';

declare module 'vitest' {
  export interface ProvidedContext {
    regtest: NetworkStatus;
  }
}

/** One regtest network for the whole integration run, on its own ports and directory. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const network = new RegtestNetwork(
    {
      dataDir: process.env['COULOMB_TEST_REGTEST_DIR'] ?? '.regtest-test',
      basePort: Number(process.env['COULOMB_TEST_REGTEST_BASE_PORT'] ?? 27600),
    },
    (m) => process.stderr.write(`[regtest] ${m}\n`),
  );
  let status: NetworkStatus;
  try {
    status = await network.up();
  } catch (err) {
    // A start that failed half-way (a timeout on a loaded machine) leaves no daemon behind.
    await network.down();
    throw err;
  }
  project.provide('regtest', status);
  return async () => {
    if (process.env['COULOMB_KEEP_REGTEST'] === '1') return;
    await network.down();
  };
}
