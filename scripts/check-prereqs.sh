#!/usr/bin/env bash
# Checks what `npm test` needs besides node_modules, and installs what it can:
#   - Debian packages gcc, make, cmake, libsecp256k1-dev (firmware-bridge host tests, native verifier),
#     mosquitto (the external-broker test), postgresql-15 (test/postgres: a throw-away server), python3-venv and chromium (the console's browser test, driven
#     by playwright-core: Debian's browser, never a download): installed with apt-get when run as root;
#   - the firmware cross toolchains, picolibc and qemu (firmware-bridge/cross/build.sh: rv32imc, lx106,
#     Cortex-M4; the rv32 tests and probes under qemu-system-riscv32 and -arm) and dpkg-dev (apt-get source);
#   - schemathesis for the API fuzz (scripts/fuzz-api.ts), pinned in scripts/fuzz-requirements.txt,
#     into the project-local, gitignored venv .venv-fuzz;
#   - the regtest binaries (btcd, lnd): built from their Go modules into ~/.cache/coulomb when
#     missing (regtest/build-nodes.sh; needs Go >= 1.25), unless COULOMB_BIN_DIR points at them.
# Otherwise it stops with the exact command to run. It never lets a test be skipped for a missing part.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "[prereqs] $*" >&2; }
fail() {
  say "MISSING: $1"
  say "run: $2"
  exit 1
}

# --- Node.js and the npm packages --------------------------------------------------------------
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
[ "$node_major" -ge 20 ] || fail "Node.js >= 20 (found $(node --version 2>/dev/null || echo none))" \
  "install Node.js 20 or newer (https://nodejs.org or your package manager), then npm ci"
[ -x node_modules/.bin/vitest ] && [ -x node_modules/.bin/tsx ] || fail "the npm packages" "npm ci"

# --- System packages ---------------------------------------------------------------------------
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
# The header of the schnorrsig module, as firmware-bridge/CMakeLists.txt and the native verifier look for it.
if ! command -v gcc >/dev/null 2>&1 || ! echo '#include <secp256k1_schnorrsig.h>' | gcc -E -x c - >/dev/null 2>&1; then
  missing+=(libsecp256k1-dev)
fi
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
# test/postgres (test/support/postgres.ts runs initdb/pg_ctl from `pg_config --bindir`).
command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] || missing+=(postgresql-15)
# test/integration/console (test/support/browser.ts launches `chromium` from PATH).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# firmware-bridge/cross/build.sh (npm run test:firmware-cross); it adds Debian's deb-src entry itself.
for p in gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-xtensa-lx106 picolibc-xtensa-lx106-elf \
  gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-misc qemu-system-arm dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif [ ! -x .venv-fuzz/bin/pip ]; then
  # Debian's python3 creates a venv with pip only with python3-venv installed.
  probe="$(mktemp -d)"
  python3 -m venv "$probe/v" >/dev/null 2>&1 || missing+=(python3-venv)
  rm -rf "$probe"
fi

if [ "${#missing[@]}" -gt 0 ]; then
  cmd="apt-get update && apt-get install -y ${missing[*]}"
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}: $cmd"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || fail "${missing[*]}" "$cmd"
  elif command -v apt-get >/dev/null 2>&1; then
    fail "${missing[*]}" "sudo sh -c '$cmd'"
  else
    fail "${missing[*]} (Debian package names)" "install them with your package manager"
  fi
fi
# Debian puts mosquitto in /usr/sbin, which a non-root PATH may lack; the test starts `mosquitto`.
command -v mosquitto >/dev/null 2>&1 || fail "mosquitto on PATH (it is in /usr/sbin)" "export PATH=\"\$PATH:/usr/sbin\""

# The native verifier: `npm install` builds it only if libsecp256k1-dev was there first; the BIP340
# test compares it with the WASM one when it is built.
if [ ! -f native/build/schnorr_verify.node ]; then
  say "building the native signature verifier (libsecp256k1)"
  node --import tsx scripts/build-native.ts || fail "the native signature verifier" "npm run build:native"
fi

# --- schemathesis in the project's venv -------------------------------------------------------
venv=.venv-fuzz
# The venv keeps a copy of the requirements it was made from: any change to the pins reinstalls.
if ! cmp -s scripts/fuzz-requirements.txt "$venv/requirements.txt" || [ ! -x "$venv/bin/schemathesis" ]; then
  say "installing schemathesis into $venv (pinned in scripts/fuzz-requirements.txt)"
  { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"; } \
    && "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/fuzz-requirements.txt \
    && cp scripts/fuzz-requirements.txt "$venv/requirements.txt" \
    || fail "schemathesis in $venv" \
      "rm -rf $venv && python3 -m venv $venv && $venv/bin/pip install -r scripts/fuzz-requirements.txt"
fi

# --- regtest binaries ---------------------------------------------------------------------------
if [ -n "${COULOMB_BIN_DIR:-}" ]; then
  for b in btcd btcctl lnd lncli; do
    [ -x "$COULOMB_BIN_DIR/$b" ] || fail "$COULOMB_BIN_DIR/$b (COULOMB_BIN_DIR is set)" \
      "unset COULOMB_BIN_DIR (to build them), or point it at a directory with btcd, btcctl, lnd and lncli"
  done
else
  # Prints "using cached binaries" when they are there; builds them (several minutes) when not.
  bash regtest/build-nodes.sh >/dev/null || fail "the regtest binaries (btcd, lnd)" \
    "install Go >= 1.25 (https://go.dev/dl/), then bash regtest/build-nodes.sh"
fi
say "all prerequisites present"
