import { RegtestNetwork } from '../src/regtest/network.js';

/**
 * The regtest network the benchmarks share (its own data dir and ports, apart from tests and
 * `npm start`; a benchmark may name others as `defaults`); COULOMB_BENCH_REGTEST_DIR and
 * COULOMB_BENCH_REGTEST_BASE_PORT move it.
 */
export function benchNetwork(defaults = { dataDir: '.regtest-bench', basePort: 27800 }): RegtestNetwork {
  return new RegtestNetwork(
    {
      dataDir: process.env['COULOMB_BENCH_REGTEST_DIR'] ?? defaults.dataDir,
      basePort: Number(process.env['COULOMB_BENCH_REGTEST_BASE_PORT'] ?? defaults.basePort),
    },
    (m) => console.error(`[regtest] ${m}`),
  );
}

/**
 * Runs a benchmark's `main`; whatever happens (an error, SIGINT or SIGTERM too), runs `cleanup`,
 * stops the network unless `keep`, and exits (with 1 after an error or a signal).
 */
export function runBench(
  main: () => Promise<void>,
  network: RegtestNetwork,
  keep: boolean,
  cleanup: () => void | Promise<void> = () => {},
): void {
  let finishing: Promise<void> | undefined;
  const finish = (): Promise<void> =>
    (finishing ??= (async () => {
      await Promise.resolve()
        .then(cleanup)
        .catch((err: unknown) => console.error(err));
      if (!keep) await network.down();
      process.exit();
    })());
  main()
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(finish);
  // Interrupted: the same cleanup, then exit with 1.
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      console.error(`${signal}: stopping`);
      process.exitCode = 1;
      void finish();
    });
}
