#!/usr/bin/env bash
# Builds btcd/btcctl and lnd/lncli from their Go modules into a version-keyed
# cache outside the work tree, and reuses them when present.
#   COULOMB_CACHE   cache root (default: $XDG_CACHE_HOME/coulomb or ~/.cache/coulomb)
# Prints the bin directory on the last line of stdout.
set -euo pipefail

BTCD_VERSION=v0.26.0
LND_VERSION=v0.19.3-beta
LND_TAGS="signrpc walletrpc chainrpc invoicesrpc peersrpc"
GO_MIN_MINOR=25

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${COULOMB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coulomb}"
tagkey="$(echo "$LND_TAGS" | tr ' ' '-')"
bindir="$cache/bin/btcd-${BTCD_VERSION}_lnd-${LND_VERSION}_${tagkey}"

log() { echo "[regtest build] $*" >&2; }

if [ -x "$bindir/lnd" ] && [ -x "$bindir/lncli" ] && [ -x "$bindir/btcd" ] && [ -x "$bindir/btcctl" ]; then
  log "using cached binaries in $bindir"
  echo "$bindir"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  log "ERROR: Go is not installed (or not on PATH). Coulomb builds btcd and lnd from source and needs Go >= 1.$GO_MIN_MINOR."
  log "Install Go from your package manager or https://go.dev/dl/, then run this again."
  exit 2
fi
gov="$(go env GOVERSION)" # e.g. go1.26.8
minor="$(echo "$gov" | sed -E 's/^go1\.([0-9]+).*/\1/')"
if ! [[ "$minor" =~ ^[0-9]+$ ]] || [ "$minor" -lt "$GO_MIN_MINOR" ]; then
  log "ERROR: found $gov, but building btcd $BTCD_VERSION needs Go >= 1.$GO_MIN_MINOR. Upgrade Go and run this again."
  exit 2
fi

mkdir -p "$bindir.tmp"
buildlog="$cache/build.log"
: > "$buildlog"
# Runs a build step, showing a package count as it goes; on failure shows the end of the log.
step() {
  local every="$1"; shift
  if ! "$@" 2>&1 | tee -a "$buildlog" | awk -v every="$every" '{ n++; if (n % every == 0) printf "[regtest build]   ... %d\n", n > "/dev/stderr" }'; then
    log "ERROR: build step failed: $*"
    tail -n 40 "$buildlog" >&2
    exit 1
  fi
}
export CGO_ENABLED=0
start=$(date +%s)
log "first build of btcd $BTCD_VERSION and lnd $LND_VERSION with $gov (downloads a few hundred modules; several minutes on 2 cores)"

log "[1/3] btcd + btcctl $BTCD_VERSION"
GOBIN="$bindir.tmp" step 25 go install -v "github.com/btcsuite/btcd@$BTCD_VERSION" "github.com/btcsuite/btcd/cmd/btcctl@$BTCD_VERSION"

cd "$here/nodes"
log "[2/3] downloading lnd's modules (go.sum is committed and pins every hash)"
step 50 go mod download -x

log "[3/3] lnd + lncli $LND_VERSION (tags: $LND_TAGS); the longest step"
step 50 go build -v -trimpath -tags "$LND_TAGS" -o "$bindir.tmp/" \
  github.com/lightningnetwork/lnd/cmd/lnd github.com/lightningnetwork/lnd/cmd/lncli

for b in btcd btcctl lnd lncli; do
  [ -x "$bindir.tmp/$b" ] || { log "ERROR: $b was not built"; exit 1; }
done
rm -rf "$bindir"
mv "$bindir.tmp" "$bindir"
log "built in $(( $(date +%s) - start ))s -> $bindir"
echo "$bindir"
