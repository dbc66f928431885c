#!/usr/bin/env bash
# Times `coulomb regtest up` with cached binaries: from stopped (a full create, since btcd drops a
# regtest chain on restart) and again while running (the idempotent check), on its own network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
args=(--data-dir .regtest-bench-up --base-port 27900)
cli() { node --import tsx src/cli/index.ts "$@"; }
trap 'cli regtest down "${args[@]}" >/dev/null 2>&1 || true' EXIT
bash regtest/build-nodes.sh >/dev/null 2>&1
cli regtest down "${args[@]}" >/dev/null 2>&1 || true
runs=${RUNS:-3}
for i in $(seq 1 "$runs"); do
  s=$(date +%s.%N); cli regtest up "${args[@]}" >/dev/null 2>&1; e=$(date +%s.%N)
  s2=$(date +%s.%N); cli regtest up "${args[@]}" >/dev/null 2>&1; e2=$(date +%s.%N)
  cli regtest down "${args[@]}" >/dev/null 2>&1
  python3 -c "print(f'run $i: up from stopped {($e-$s):.1f}s, up while running {($e2-$s2):.1f}s')"
done
