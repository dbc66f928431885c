import { RegtestNetwork } from '../src/regtest/network.js';

/**
 * The regtest network the benchmarks share (its own data dir and ports, apart from tests and
 * `npm start`); COULOMB_BENCH_REGTEST_DIR and COULOMB_BENCH_REGTEST_BASE_PORT move it.
 */
export function benchNetwork(): RegtestNetwork {
  return new RegtestNetwork(
    {
      dataDir: process.env['COULOMB_BENCH_REGTEST_DIR'] ?? '.regtest-bench',
      basePort: Number(process.env['COULOMB_BENCH_REGTEST_BASE_PORT'] ?? 27800),
    },
    (m) => console.error(`[regtest] ${m}`),
  );
}

/**
 * Runs a benchmark's `main`; whatever happens, runs `cleanup`, stops the network unless `keep`,
 * and exits (with 1 after an error).
 */
export function runBench(
  main: () => Promise<void>,
  network: RegtestNetwork,
  keep: boolean,
  cleanup: () => void = () => {},
): void {
  main()
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(async () => {
      cleanup();
      if (!keep) await network.down();
      process.exit();
    });
}
