#!/usr/bin/env bash
# Cross builds of the Coulomb device library for three microcontroller instruction sets, the host
# test suite run under emulation on rv32, and the figures of firmware-bridge/README.md.
#
#   bash firmware-bridge/cross/build.sh                 # build, test, measure (npm run test:firmware-cross)
#   bash firmware-bridge/cross/build.sh --update-readme # ... and rewrite the README's figures
#
# Targets (Debian bookworm toolchains, all -Os):
#   rv32imc   riscv64-unknown-elf-gcc -march=rv32imc -mabi=ilp32 (ESP32-C3 class), picolibc for the tests
#   lx106     xtensa-lx106-elf-gcc -mlongcalls (ESP8266 core: the Xtensa toolchain Debian has)
#   cortex-m4 arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb
# libsecp256k1 0.2.0 comes from Debian's source package (apt-get source libsecp256k1, with a
# deb-src entry for bookworm main added when missing), unpacked under the cache, never in git.
#
# What it does per target:
#   1. libsecp256k1.a (extrakeys + schnorrsig, ECMULT_WINDOW_SIZE=8, ECMULT_GEN_PREC_BITS=4: the
#      settings of examples/esp-idf-components/secp256k1) and libcoulomb.a, -Os, with
#      -ffunction-sections -fdata-sections -fstack-usage;
#   2. a size image (size_main.c keeps every public function) linked with -nostdlib against
#      mini_libc.c only (so any malloc/free reference fails the link), with a linker map;
#      mapsum.awk sums the map's input sections per archive: flash = text + rodata, RAM = data + bss.
# On rv32imc also:
#   3. test/coulomb_tests.c (every CTest suite that does not need sockets or threads: sha256,
#      vectors against test/vectors.json, escapes, parser, buffers, signing) built with picolibc
#      and run bare-metal in qemu-system-riscv32 (virt, semihosting for argv, files and exit code);
#   4. probe.c under qemu with -icount shift=0 (the instret CSR then counts executed instructions):
#      instructions and peak stack (painted) of signing a request + its JSON envelope (the
#      documented path: key pair made at boot, aux randomness from the platform hook, for which the
#      emulated images link the stand-in qemu_random.c), and of opening (parsing + verifying) a
#      response; again against the library built with -DCOULOMB_VERIFY_AFTER_SIGN=1, and against
#      libsecp256k1 built with other table sizes (secp_tables: flash against time);
#   5. crypto.c built with -DCOULOMB_HAVE_RANDOM=0 must not reference the platform hook.
# On lx106 (qemu-system-xtensa -M sim -cpu lx106) and Cortex-M4 (qemu-system-arm -M mps2-an386):
#   6. probe.c again, for the peak stack (no instruction counter there);
#   7. on Cortex-M4 also the suites of step 3 (semihosting as on rv32).
# Results: firmware-bridge/build/cross/figures.md (and README.md between the "cross-figures" markers
# with --update-readme). Any failure stops the script with a non-zero status.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fw="$(dirname "$here")"
repo="$(dirname "$fw")"
cache="${COULOMB_FIRMWARE_CROSS_CACHE:-$HOME/.cache/coulomb/firmware-cross}"
out="$fw/build/cross"
update_readme=0
[ "${1:-}" = "--update-readme" ] && update_readme=1

say() { echo "[firmware-cross] $*" >&2; }
die() {
  say "FAIL: $*"
  exit 1
}

# --- Debian packages ---------------------------------------------------------------------------
packages=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-xtensa-lx106 picolibc-xtensa-lx106-elf
  gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-misc qemu-system-arm dpkg-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}; run: sudo sh -c '$cmd'"
  say "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "could not install ${missing[*]}"
fi

# --- libsecp256k1 sources (Debian's source package) ---------------------------------------------
secp_version=0.2.0
secp="$cache/src/libsecp256k1-$secp_version"
if [ ! -f "$secp/src/secp256k1.c" ]; then
  if ! apt-get source --print-uris libsecp256k1 >/dev/null 2>&1; then
    src_list=/etc/apt/sources.list.d/coulomb-debian-src.sources
    [ "$(id -u)" -eq 0 ] || die "no deb-src entry for Debian; add one (see $0) or run as root"
    say "adding a deb-src entry for bookworm main ($src_list)"
    printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' \
      'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$src_list"
    apt-get update -qq || die "apt-get update"
  fi
  mkdir -p "$cache/src"
  (cd "$cache/src" && apt-get source -qq libsecp256k1 >/dev/null 2>&1) || die "apt-get source libsecp256k1"
  [ -f "$secp/src/secp256k1.c" ] || die "apt-get source did not give libsecp256k1 $secp_version in $cache/src"
fi

# --- builds ---------------------------------------------------------------------------------------
secp_defs=(-DENABLE_MODULE_EXTRAKEYS=1 -DENABLE_MODULE_SCHNORRSIG=1 -DECMULT_WINDOW_SIZE=8
  -DECMULT_GEN_PREC_BITS=4 -DUSE_EXTERNAL_DEFAULT_CALLBACKS=1)
lib_sources=(sha256 util message json_write json_parse crypto)
# picolibc (Debian's picolibc-<target> packages) gives the C headers; the size image links no libc.
common=(-Os -ffunction-sections -fdata-sections -fstack-usage)

target_flags() {
  case "$1" in
    rv32imc) echo "-march=rv32imc -mabi=ilp32 --specs=picolibc.specs" ;;
    lx106) echo "-mlongcalls --specs=/usr/lib/xtensa-lx106-elf/picolibc.specs" ;;
    cortex-m4) echo "-mcpu=cortex-m4 -mthumb --specs=picolibc.specs" ;;
  esac
}
target_cc() {
  case "$1" in
    rv32imc) echo riscv64-unknown-elf-gcc ;;
    lx106) echo xtensa-lx106-elf-gcc ;;
    cortex-m4) echo arm-none-eabi-gcc ;;
  esac
}

# Rebuilds only what changed: objects depend on their source, the library's headers and the flags.
compile() { # cc flags... -- src obj
  local cc="$1" src obj
  shift
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  src="$2"
  obj="$3"
  local stamp="$obj.flags" want="$cc ${flags[*]}"
  if [ -f "$obj" ] && [ "$obj" -nt "$src" ] && [ "$obj" -nt "$fw/include/coulomb_device.h" ] \
    && [ "$obj" -nt "$fw/src/internal.h" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  "$cc" "${flags[@]}" -c "$src" -o "$obj" || die "compile $src for $cc"
  echo "$want" >"$stamp"
}

build_target() {
  local t="$1" cc tf b
  cc="$(target_cc "$t")"
  read -r -a tf <<<"$(target_flags "$t")"
  # The ESP8266 has 64-bit multiply/divide and 32-bit divide in ROM, so Debian's lx106 libgcc
  # leaves them out: link them at their ROM addresses (the SDK's eagle.rom.addr.v6.ld).
  local rom=()
  [ "$t" = lx106 ] && rom=(-Wl,--defsym=__muldi3=0x40000650 -Wl,--defsym=__udivdi3=0x4000d310
    -Wl,--defsym=__umoddi3=0x4000d770 -Wl,--defsym=__divsi3=0x4000dc88 -Wl,--defsym=__udivsi3=0x4000e21c
    -Wl,--defsym=__umodsi3=0x4000e268)
  # Linking: the same flags without picolibc's specs (they add its linker script); no libc at all.
  local lf=()
  for f in "${tf[@]}"; do [[ "$f" == --specs=* ]] || lf+=("$f"); done
  b="$out/$t"
  mkdir -p "$b/secp" "$b/lib" "$b/image"
  local secp_objs=() lib_objs=()
  for f in secp256k1 precomputed_ecmult precomputed_ecmult_gen; do
    compile "$cc" "${tf[@]}" "${common[@]}" -std=c89 -w "${secp_defs[@]}" -I"$secp/include" -I"$secp/src" \
      -- "$secp/src/$f.c" "$b/secp/$f.o"
    secp_objs+=("$b/secp/$f.o")
  done
  rm -f "$b/libsecp256k1.a" && "${cc%gcc}ar" rcs "$b/libsecp256k1.a" "${secp_objs[@]}"
  for f in "${lib_sources[@]}"; do
    compile "$cc" "${tf[@]}" "${common[@]}" -std=c99 -Wall -Wextra -Werror -pedantic -Wshadow -Wconversion \
      -Wstrict-prototypes -Wmissing-prototypes -I"$fw/include" -I"$secp/include" \
      -- "$fw/src/$f.c" "$b/lib/$f.o"
    lib_objs+=("$b/lib/$f.o")
  done
  rm -f "$b/libcoulomb.a" && "${cc%gcc}ar" rcs "$b/libcoulomb.a" "${lib_objs[@]}"
  # No heap in the library itself: no allocator among its undefined symbols.
  if "${cc%gcc}nm" -u "${lib_objs[@]}" | grep -Ew '(malloc|calloc|realloc|free|_sbrk|sbrk)'; then
    die "$t: the library references an allocator"
  fi
  compile "$cc" "${tf[@]}" "${common[@]}" -std=gnu99 -I"$fw/include" -I"$secp/include" \
    -- "$here/size_main.c" "$b/image/size_main.o"
  compile "$cc" "${tf[@]}" "${common[@]}" -std=c99 -Wall -Wextra -Werror -pedantic -I"$fw/include" -I"$secp/include" \
    -- "$here/qemu_random.c" "$b/image/qemu_random.o"
  compile "$cc" "${tf[@]}" -Os -ffunction-sections -ffreestanding -fno-builtin -fno-tree-loop-distribute-patterns \
    -- "$here/mini_libc.c" "$b/image/mini_libc.o"
  "$cc" "${lf[@]}" -nostdlib -nostartfiles -Wl,--gc-sections -Wl,-e,_start -Wl,-Map,"$b/image/size.map" \
    -o "$b/image/size.elf" "$b/image/size_main.o" "$b/image/qemu_random.o" "$b/libcoulomb.a" "$b/libsecp256k1.a" \
    "$b/image/mini_libc.o" -lgcc "${rom[@]}" || die "$t: size image link (a malloc/free reference fails it)"
  if grep -Ew '(malloc|calloc|realloc|free)' "$b/image/size.map" >/dev/null; then
    die "$t: the size image's map mentions an allocator"
  fi
  awk -v target="$t" -f "$here/mapsum.awk" "$b/image/size.map" >"$b/sizes.txt" || die "$t: map summary"
  say "$t: $(tr '\n' ' ' <"$b/sizes.txt")"
}

# --- rv32imc under qemu ------------------------------------------------------------------------------
rv_flags=(-march=rv32imc -mabi=ilp32 --specs=picolibc.specs --oslib=semihost --crt0=semihost)
# qemu's virt machine starts at 0x80000000 with -bios none: the image's flash goes there, RAM after it.
rv_layout=(-Wl,--defsym=__flash=0x80000000 -Wl,--defsym=__flash_size=0x400000 -Wl,--defsym=__ram=0x80400000
  -Wl,--defsym=__ram_size=0x1000000 -Wl,--defsym=__stack_size=0x20000)
qemu_rv32() { # elf args...: runs it bare-metal, semihosting gives it argv, host files and its exit code
  local elf="$1" args="" a
  shift
  for a in "$(basename "$elf" .elf)" "$@"; do args="$args,arg=$a"; done
  timeout 300 qemu-system-riscv32 -M virt -cpu rv32 -bios none -nographic -icount shift=0 -kernel "$elf" \
    -semihosting-config "enable=on,target=native$args" </dev/null
}

rv32_programs() {
  local b="$out/rv32imc" cc=riscv64-unknown-elf-gcc strict=(-std=c99 -Wall -Wextra -Werror -pedantic)
  mkdir -p "$b/test" "$b/lib-verify" "$b/lib-norandom"
  compile $cc "${rv_flags[@]}" -Os "${strict[@]}" -I"$fw/include" -I"$secp/include" -Dmain=program_main \
    -- "$fw/test/coulomb_tests.c" "$b/test/coulomb_tests.o"
  compile $cc "${rv_flags[@]}" -Os "${strict[@]}" -- "$fw/test/tiny_json.c" "$b/test/tiny_json.o"
  compile $cc "${rv_flags[@]}" -Os "${strict[@]}" -- "$here/semihost_main.c" "$b/test/semihost_main.o"
  compile $cc "${rv_flags[@]}" -Os "${strict[@]}" -- "$here/callbacks.c" "$b/test/callbacks.o"
  # instret needs the Zicsr extension in the assembler; the code is still rv32imc.
  compile $cc -march=rv32imc_zicsr -mabi=ilp32 --specs=picolibc.specs -Os -std=gnu99 -Wall -Wextra -Werror \
    -I"$fw/include" -I"$secp/include" -- "$here/probe.c" "$b/test/probe.o"
  local rnd="$b/image/qemu_random.o"
  $cc "${rv_flags[@]}" "${rv_layout[@]}" -o "$b/test/coulomb_tests.elf" "$b/test/coulomb_tests.o" \
    "$b/test/tiny_json.o" "$b/test/semihost_main.o" "$b/test/callbacks.o" "$rnd" "$b/libcoulomb.a" \
    "$b/libsecp256k1.a" || die "rv32imc: link coulomb_tests"
  $cc "${rv_flags[@]}" "${rv_layout[@]}" -o "$b/test/probe.elf" "$b/test/probe.o" "$b/test/callbacks.o" "$rnd" \
    "$b/libcoulomb.a" "$b/libsecp256k1.a" || die "rv32imc: link probe"
  # The same probe against the library built with -DCOULOMB_VERIFY_AFTER_SIGN=1 (opt-in hardening).
  local objs=()
  for f in "${lib_sources[@]}"; do
    compile $cc -march=rv32imc -mabi=ilp32 --specs=picolibc.specs "${common[@]}" -DCOULOMB_VERIFY_AFTER_SIGN=1 \
      -I"$fw/include" -I"$secp/include" -- "$fw/src/$f.c" "$b/lib-verify/$f.o"
    objs+=("$b/lib-verify/$f.o")
  done
  rm -f "$b/libcoulomb-verify.a" && riscv64-unknown-elf-ar rcs "$b/libcoulomb-verify.a" "${objs[@]}"
  $cc "${rv_flags[@]}" "${rv_layout[@]}" -o "$b/test/probe-verify.elf" "$b/test/probe.o" "$b/test/callbacks.o" \
    "$rnd" "$b/libcoulomb-verify.a" "$b/libsecp256k1.a" || die "rv32imc: link probe (verify after sign)"
  # A device without a randomness source (-DCOULOMB_HAVE_RANDOM=0): the library must not reference
  # the platform hook (it verifies every signature instead).
  compile $cc -march=rv32imc -mabi=ilp32 --specs=picolibc.specs "${common[@]}" -DCOULOMB_HAVE_RANDOM=0 \
    -std=c99 -Wall -Wextra -Werror -pedantic -I"$fw/include" -I"$secp/include" \
    -- "$fw/src/crypto.c" "$b/lib-norandom/crypto.o"
  if riscv64-unknown-elf-nm -u "$b/lib-norandom/crypto.o" | grep -w coulomb_platform_random; then
    die "rv32imc: the library built with COULOMB_HAVE_RANDOM=0 still calls coulomb_platform_random"
  fi
}

# --- libsecp256k1's table sizes against time, on rv32imc ---------------------------------------------
# ECMULT_WINDOW_SIZE (verification: 2 * 2^(w-2) precomputed points of 64 bytes) and
# ECMULT_GEN_PREC_BITS (signing: 256/b * 2^b points, each looked up in constant time by scanning
# all 2^b of its row). For each pair: the size image's libsecp256k1 flash and the probe's instructions,
# with the library's defaults and with -DCOULOMB_VERIFY_AFTER_SIGN=1.
secp_tables=("8 4" "8 2" "8 8" "12 4" "15 4")
rv32_tables() {
  local b="$out/rv32imc" cc=riscv64-unknown-elf-gcc w g d f objs src obj fw_ fg_
  for wg in "${secp_tables[@]}"; do
    read -r w g <<<"$wg"
    d="$b/tables/w$w-g$g"
    mkdir -p "$d"
    # Each table depends on one setting only: its object is shared between configurations.
    objs=("$d/secp256k1.o" "$b/tables/ecmult-w$w.o" "$b/tables/ecmult_gen-g$g.o")
    for f in "secp256k1 $d/secp256k1.o $w $g" "precomputed_ecmult ${objs[1]} $w 4" \
      "precomputed_ecmult_gen ${objs[2]} 8 $g"; do
      read -r src obj fw_ fg_ <<<"$f"
      compile $cc -march=rv32imc -mabi=ilp32 --specs=picolibc.specs "${common[@]}" -std=c89 -w \
        -DENABLE_MODULE_EXTRAKEYS=1 -DENABLE_MODULE_SCHNORRSIG=1 -DECMULT_WINDOW_SIZE="$fw_" \
        -DECMULT_GEN_PREC_BITS="$fg_" -DUSE_EXTERNAL_DEFAULT_CALLBACKS=1 -I"$secp/include" -I"$secp/src" \
        -- "$secp/src/$src.c" "$obj"
    done
    rm -f "$d/libsecp256k1.a" && riscv64-unknown-elf-ar rcs "$d/libsecp256k1.a" "${objs[@]}"
    $cc -march=rv32imc -mabi=ilp32 -nostdlib -nostartfiles -Wl,--gc-sections -Wl,-e,_start -Wl,-Map,"$d/size.map" \
      -o "$d/size.elf" "$b/image/size_main.o" "$b/image/qemu_random.o" "$b/libcoulomb.a" "$d/libsecp256k1.a" \
      "$b/image/mini_libc.o" -lgcc || die "rv32imc w=$w g=$g: size image link"
    awk -v target=rv32imc -f "$here/mapsum.awk" "$d/size.map" >"$d/sizes.txt" || die "rv32imc w=$w g=$g: map summary"
    for v in "" -verify; do
      $cc "${rv_flags[@]}" "${rv_layout[@]}" -o "$d/probe$v.elf" "$b/test/probe.o" "$b/test/callbacks.o" \
        "$b/image/qemu_random.o" "$b/libcoulomb$v.a" "$d/libsecp256k1.a" || die "rv32imc w=$w g=$g: link probe$v"
      if ! qemu_rv32 "$d/probe$v.elf" >"$d/probe$v.txt" 2>&1; then
        cat "$d/probe$v.txt" >&2
        die "rv32imc w=$w g=$g: probe$v failed under qemu"
      fi
    done
    say "rv32imc tables w=$w g=$g: $(awk '$1 == "build_request" { print $2 }' "$d/probe.txt") / $(awk '$1 == "build_request" { print $2 }' "$d/probe-verify.txt") instructions"
  done
}

# --- lx106 under qemu (stack only) -----------------------------------------------------------------
# qemu-system-xtensa has the lx106 core; picolibc has no Xtensa semihosting, so lx106_sim.c
# starts the program and writes through qemu's simcall, and lx106-sim.ld maps it.
qemu_lx106() { # elf
  timeout 300 qemu-system-xtensa -M sim -cpu lx106 -display none -monitor none -serial none -semihosting \
    -kernel "$1" </dev/null
}
lx106_programs() {
  local b="$out/lx106" cc=xtensa-lx106-elf-gcc lx=(-mlongcalls --specs=/usr/lib/xtensa-lx106-elf/picolibc.specs)
  mkdir -p "$b/test"
  compile $cc "${lx[@]}" -Os -std=gnu99 -Wall -Wextra -Werror -I"$fw/include" -I"$secp/include" \
    -- "$here/probe.c" "$b/test/probe.o"
  compile $cc "${lx[@]}" -Os -std=c99 -Wall -Wextra -Werror -pedantic -- "$here/callbacks.c" "$b/test/callbacks.o"
  compile $cc "${lx[@]}" -Os -std=gnu99 -Wall -Wextra -Werror -- "$here/lx106_sim.c" "$b/test/lx106_sim.o"
  # Integer-only printf (no float formatting code).
  $cc -mlongcalls -nostartfiles -T "$here/lx106-sim.ld" -Wl,--gc-sections -Wl,--defsym=vfprintf=__i_vfprintf \
    -o "$b/test/probe.elf" "$b/test/probe.o" "$b/test/lx106_sim.o" "$b/test/callbacks.o" "$b/image/qemu_random.o" \
    "$b/libcoulomb.a" "$b/libsecp256k1.a" -L/usr/lib/xtensa-lx106-elf/lib -lc -lgcc || die "lx106: link probe"
}

# --- Cortex-M4 under qemu (stack only: no instruction counter there) --------------------------------
m4_flags=(-mcpu=cortex-m4 -mthumb --specs=picolibc.specs --oslib=semihost --crt0=semihost)
# mps2-an386 (Cortex-M4): code SRAM at 0, data SRAM at 0x20000000.
m4_layout=(-Wl,--defsym=__flash=0x0 -Wl,--defsym=__flash_size=0x400000 -Wl,--defsym=__ram=0x20000000
  -Wl,--defsym=__ram_size=0x400000 -Wl,--defsym=__stack_size=0x20000)
qemu_m4() { # elf args...
  local elf="$1" args="" a
  shift
  for a in "$(basename "$elf" .elf)" "$@"; do args="$args,arg=$a"; done
  timeout 300 qemu-system-arm -M mps2-an386 -nographic -kernel "$elf" \
    -semihosting-config "enable=on,target=native$args" </dev/null
}
m4_programs() {
  local b="$out/cortex-m4" cc=arm-none-eabi-gcc
  mkdir -p "$b/test"
  compile $cc "${m4_flags[@]}" -Os -std=gnu99 -Wall -Wextra -Werror -I"$fw/include" -I"$secp/include" \
    -- "$here/probe.c" "$b/test/probe.o"
  compile $cc "${m4_flags[@]}" -Os -std=c99 -Wall -Wextra -Werror -pedantic -- "$here/callbacks.c" "$b/test/callbacks.o"
  $cc "${m4_flags[@]}" "${m4_layout[@]}" -o "$b/test/probe.elf" "$b/test/probe.o" "$b/test/callbacks.o" \
    "$b/image/qemu_random.o" "$b/libcoulomb.a" "$b/libsecp256k1.a" || die "cortex-m4: link probe"
  local strict=(-std=c99 -Wall -Wextra -Werror -pedantic)
  compile $cc "${m4_flags[@]}" -Os "${strict[@]}" -I"$fw/include" -I"$secp/include" -Dmain=program_main \
    -- "$fw/test/coulomb_tests.c" "$b/test/coulomb_tests.o"
  compile $cc "${m4_flags[@]}" -Os "${strict[@]}" -- "$fw/test/tiny_json.c" "$b/test/tiny_json.o"
  compile $cc "${m4_flags[@]}" -Os "${strict[@]}" -- "$here/semihost_main.c" "$b/test/semihost_main.o"
  $cc "${m4_flags[@]}" "${m4_layout[@]}" -o "$b/test/coulomb_tests.elf" "$b/test/coulomb_tests.o" \
    "$b/test/tiny_json.o" "$b/test/semihost_main.o" "$b/test/callbacks.o" "$b/image/qemu_random.o" "$b/libcoulomb.a" \
    "$b/libsecp256k1.a" || die "cortex-m4: link coulomb_tests"
}

suite_tests() { # target runner: the host suite's vectors and checks, on the emulated target
  local t="$1" run="$2" elf="$out/$1/test/coulomb_tests.elf" s log
  for s in sha256 "vectors $fw/test/vectors.json" escapes parser buffers signing; do
    log="$out/$t/test/${s%% *}.log"
    # shellcheck disable=SC2086 # word splitting of "vectors <file>" is wanted
    if ! "$run" "$elf" $s >"$log" 2>&1; then
      cat "$log" >&2
      die "$t: coulomb_tests ${s%% *} failed under qemu"
    fi
    say "$t (qemu): $(tail -n 1 "$log")"
  done
}

mkdir -p "$out"
start=$(date +%s)
for t in rv32imc lx106 cortex-m4; do build_target "$t"; done
say "cross builds done in $(($(date +%s) - start))s"
rv32_programs
suite_tests rv32imc qemu_rv32
for v in probe probe-verify; do
  # qemu writes the program's semihosting output to its stderr.
  if ! qemu_rv32 "$out/rv32imc/test/$v.elf" >"$out/rv32imc/$v.txt" 2>&1; then
    cat "$out/rv32imc/$v.txt" >&2
    die "rv32imc: $v failed under qemu"
  fi
  say "rv32imc $v: $(tr '\n' ' ' <"$out/rv32imc/$v.txt")"
done
lx106_programs
if ! qemu_lx106 "$out/lx106/test/probe.elf" >"$out/lx106/probe.txt" 2>&1; then
  cat "$out/lx106/probe.txt" >&2
  die "lx106: probe failed under qemu"
fi
say "lx106 probe: $(tr '\n' ' ' <"$out/lx106/probe.txt")"
rv32_tables
m4_programs
suite_tests cortex-m4 qemu_m4
if ! qemu_m4 "$out/cortex-m4/test/probe.elf" >"$out/cortex-m4/probe.txt" 2>&1; then
  cat "$out/cortex-m4/probe.txt" >&2
  die "cortex-m4: probe failed under qemu"
fi
say "cortex-m4 probe: $(tr '\n' ' ' <"$out/cortex-m4/probe.txt")"

# --- figures ----------------------------------------------------------------------------------------
val() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }
kb() { awk -v n="$1" 'BEGIN { printf "%.1f KiB", n / 1024 }'; }
figures() {
  local t f lf lr sf sr rf stack_sign stack_open time_sign
  echo "Produced by \`bash firmware-bridge/cross/build.sh\` (Debian bookworm cross compilers, GCC 12.2, \`-Os\`;"
  echo "libsecp256k1 $secp_version from Debian's source package with \`ECMULT_WINDOW_SIZE=8\`,"
  echo "\`ECMULT_GEN_PREC_BITS=4\`). Flash = text + rodata and RAM = data + bss, summed per archive from the"
  echo "linker map of a size image that keeps every public function"
  echo "(\`firmware-bridge/build/cross/<target>/image/size.map\`). Peak stack: painted, under qemu"
  echo "(\`firmware-bridge/cross/probe.c\`), libsecp256k1 included, caller's context. Time: **an estimate**,"
  echo "rv32imc instructions counted by qemu ÷ 160 MHz at one instruction per cycle, not a measurement on a chip."
  echo "\"Sign request + envelope\" is the documented device path with the library's defaults: the key pair"
  echo "made once at boot (\`coulomb_keypair_create\`), then \`coulomb_sign_request_keypair\` with \`aux32 = NULL\`"
  echo "(BIP340 aux randomness from the platform hook; under qemu a stand-in, \`cross/qemu_random.c\`) and"
  echo "\`coulomb_request_to_json\`; no verification after signing (see \"Fault attacks\")."
  echo
  echo "| Target | Library flash | Library RAM | libsecp256k1 flash | libsecp256k1 RAM | Library + libsecp256k1 flash | libc/libgcc used | Peak stack: sign request + envelope | Peak stack: open response | Sign request + envelope at 160 MHz |"
  echo "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: |"
  for t in rv32imc lx106 cortex-m4; do
    f="$out/$t/sizes.txt"
    lf=$(($(val "$f" lib_text) + $(val "$f" lib_rodata)))
    lr=$(($(val "$f" lib_data) + $(val "$f" lib_bss)))
    sf=$(($(val "$f" secp_text) + $(val "$f" secp_rodata)))
    sr=$(($(val "$f" secp_data) + $(val "$f" secp_bss)))
    rf=$(($(val "$f" runtime_text) + $(val "$f" runtime_rodata)))
    stack_sign="$(awk '$1 == "build_request" { print $3 }' "$out/$t/probe.txt") B"
    stack_open="$(awk '$1 == "open_response" { print $3 }' "$out/$t/probe.txt") B"
    time_sign="not measured (no instruction counter)"
    [ "$t" = rv32imc ] && time_sign="$(awk '$1 == "build_request" { printf "%.1f ms (estimate)", $2 / 160000 }' \
      "$out/$t/probe.txt")"
    echo "| $t | $lf B ($(kb $lf)) | $lr B | $sf B ($(kb $sf)) | $sr B | $((lf + sf)) B ($(kb $((lf + sf)))) | $rf B | $stack_sign | $stack_open | $time_sign |"
  done
  echo
  echo "Each operation on rv32imc under \`qemu-system-riscv32 -icount shift=0\` (instructions: the \`instret\` counter):"
  echo
  echo "| Operation | Library built with | Instructions | Estimated time at 160 MHz | Peak stack |"
  echo "| --- | --- | --: | --: | --: |"
  local name label build file line insns stack what
  for build in probe probe-verify; do
    file="$out/rv32imc/$build.txt"
    [ "$build" = probe ] && label="defaults" || label="\`-DCOULOMB_VERIFY_AFTER_SIGN=1\`"
    for name in build_request build_request_secret build_request_tmp build_request_aux sign_digest keypair_create \
      device_id open_response; do
      [ "$build" = probe-verify ] && case "$name" in build_request_aux | keypair_create | device_id | open_response) continue ;; esac
      line=$(awk -v k="$name" '$1 == k' "$file")
      insns=$(echo "$line" | awk '{ print $2 }')
      stack=$(echo "$line" | awk '{ print $3 }')
      [ -n "$insns" ] || die "probe output lacks $name"
      case "$name" in
        build_request) what="sign request + envelope: key pair made at boot, \`aux32 = NULL\` (the documented path)" ;;
        build_request_secret) what="the same from the secret key (\`coulomb_sign_request\`: key pair derived per call)" ;;
        build_request_tmp) what="the same with \`ctx = NULL\` too" ;;
        build_request_aux) what="the documented path with a caller-given \`aux32\` (then verified before release)" ;;
        sign_digest) what="\`coulomb_sign_digest\`, \`aux32 = NULL\` (caller's context)" ;;
        keypair_create) what="\`coulomb_keypair_create\` (once, at boot: key pair + its one-time sign/verify check)" ;;
        device_id) what="\`coulomb_device_id\` (one key pair: a fixed-base multiplication)" ;;
        open_response) what="\`coulomb_open_response\`: parse + verify a response" ;;
      esac
      echo "| $what | $label | $insns | $(awk -v n="$insns" 'BEGIN { printf "%.1f ms", n / 160000 }') | $stack B |"
    done
  done
  echo
  echo "libsecp256k1's precomputed tables against time on rv32imc (same probe, same estimate; flash from each"
  echo "configuration's size image, \`firmware-bridge/build/cross/rv32imc/tables/\`). \`ECMULT_WINDOW_SIZE\` sizes"
  echo "the verification table, \`ECMULT_GEN_PREC_BITS\` the signing table (its constant-time lookups scan"
  echo "every entry of a row, so more bits is not always faster):"
  echo
  echo "| \`ECMULT_WINDOW_SIZE\` | \`ECMULT_GEN_PREC_BITS\` | libsecp256k1 flash | Sign request + envelope (defaults) | The same with \`-DCOULOMB_VERIFY_AFTER_SIGN=1\` | Open (parse + verify) a response |"
  echo "| --: | --: | --: | --: | --: | --: |"
  local w g d ms
  ms() { awk -v k="$1" '$1 == k { printf "%.1f ms", $2 / 160000 }' "$2"; }
  for wg in "${secp_tables[@]}"; do
    read -r w g <<<"$wg"
    d="$out/rv32imc/tables/w$w-g$g"
    sf=$(($(val "$d/sizes.txt" secp_text) + $(val "$d/sizes.txt" secp_rodata)))
    echo "| $w | $g | $sf B ($(kb $sf)) | $(ms build_request "$d/probe.txt") | $(ms build_request "$d/probe-verify.txt") | $(ms open_response "$d/probe.txt") |"
  done
  echo
  for t in lx106 cortex-m4; do
    [ "$t" = lx106 ] && echo "Peak stack on lx106 (\`qemu-system-xtensa -M sim -cpu lx106\`), same probe:"
    [ "$t" = cortex-m4 ] && echo "Peak stack on Cortex-M4 (\`qemu-system-arm -M mps2-an386\`), same probe:"
    echo "$(awk '$1 ~ /^(build_request|build_request_secret|build_request_tmp|build_request_aux|sign_digest|keypair_create|device_id|open_response)$/ { printf "%s%s %s B", sep, $1, $3; sep = ", " }' "$out/$t/probe.txt")."
    echo
  done
  echo
  f="$out/rv32imc/probe.txt"
  echo "Sizes on rv32imc: context (\`coulomb_context_size()\`) $(val "$f" context_size) bytes, \`coulomb_request\`"
  echo "$(val "$f" sizeof_request), \`coulomb_response\` $(val "$f" sizeof_response), \`coulomb_event\` $(val "$f" sizeof_event)."
}
figures >"$out/figures.md"

# README.md's figures are this output, formatted by prettier: stale figures fail the run.
readme="$fw/README.md"
begin='<!-- cross-figures:begin (bash firmware-bridge/cross/build.sh --update-readme) -->'
end='<!-- cross-figures:end -->'
grep -qF "$begin" "$readme" && grep -qF "$end" "$readme" || die "README.md lacks the cross-figures markers"
prettier="$repo/node_modules/.bin/prettier"
[ -x "$prettier" ] || die "prettier (npm ci) is needed to format the figures"
formatted="$(awk -v b="$begin" -v e="$end" -v f="$out/figures.md" '
  index($0, b) == 1 { print; while ((getline line < f) > 0) print line; print ""; skip = 1; next }
  index($0, e) == 1 { skip = 0 }
  !skip' "$readme" | "$prettier" --stdin-filepath "$readme")" || die "prettier"
printf '%s\n' "$formatted" >"$out/README.md.new"
if ! cmp -s "$readme" "$out/README.md.new"; then
  if [ "$update_readme" = 1 ]; then
    cp "$out/README.md.new" "$readme"
    say "README.md figures updated"
  else
    diff -u "$readme" "$out/README.md.new" >&2 || true
    die "firmware-bridge/README.md's figures differ from this build's: run bash firmware-bridge/cross/build.sh --update-readme"
  fi
fi
say "all targets built, suites passed on rv32imc and cortex-m4, figures match README.md; done in $(($(date +%s) - start))s"
