#!/usr/bin/env bash
# Installs what the reference clients of crates/quotehub-client need, so that
# tests/reference_clients.rs can run them:
#   - a Python venv at target/clients-venv with `websockets` (from PyPI), for
#     crates/quotehub-client/python/live_client.py;
#   - `kosoku` (PyPI) in the same venv: it runs the Autobahn WebSocket test
#     suite's cases against the hub's echo route (tests/autobahn.rs);
#   - the npm packages in crates/quotehub-client/js/node_modules (npm ci, from
#     package-lock.json): `ws` for live_client.mjs, `playwright-core` to drive
#     Debian's Chromium for the quote board test;
#   - Bun, for the load tool's uWebSockets peer (benches/peer/bun_pubsub.mjs):
#     the npm package `@oven/bun-linux-x64` (the bun binary itself, at the
#     version pinned in benches/peer/package-lock.json) in
#     benches/peer/node_modules (npm ci). Only on Linux x86-64 with glibc,
#     the platform that package is built for; elsewhere the bench reports the
#     Bun peer skipped with the reason.
# Idempotent: run it again at any time. Downloads only from PyPI and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

# Kept in step with what live_client.py is tested against.
WEBSOCKETS_REQUIREMENT='websockets>=17,<18'
KOSOKU_REQUIREMENT='kosoku>=0.1,<0.2'
VENV=target/clients-venv
JS_DIR=crates/quotehub-client/js
PEER_DIR=benches/peer

die() {
  echo "setup_clients.sh: $*" >&2
  exit 1
}

command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or later (Debian: apt-get install python3 python3-venv)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "python3 is $(python3 -V 2>&1): the clients need Python 3.11 or later"
command -v node >/dev/null || die "node is missing: install Node.js 20 or later (with npm)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
  || die "node is $(node --version): the clients need Node.js 20 or later"
command -v npm >/dev/null || die "npm is missing: install it with Node.js 20 or later"

if [[ -x "$VENV/bin/python" ]]; then
  echo "==> Python venv $VENV exists"
else
  echo "==> creating Python venv $VENV"
  python3 -m venv "$VENV" || die "could not create $VENV (Debian: apt-get install python3-venv)"
fi
echo "==> pip install '$WEBSOCKETS_REQUIREMENT' '$KOSOKU_REQUIREMENT' into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$WEBSOCKETS_REQUIREMENT" "$KOSOKU_REQUIREMENT"
echo "    websockets $("$VENV/bin/python" -c 'import websockets; print(websockets.__version__)')"

(
  cd "$JS_DIR"
  if [[ -f package-lock.json ]]; then
    echo "==> npm ci in $JS_DIR"
    npm ci --no-audit --no-fund
  else
    echo "==> npm install in $JS_DIR (no package-lock.json yet)"
    npm install --no-audit --no-fund
  fi
  echo "    ws $(node -p 'require("./node_modules/ws/package.json").version')"
)

if [[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]]; then
  echo "==> npm ci in $PEER_DIR (bun, from @oven/bun-linux-x64)"
  (cd "$PEER_DIR" && npm ci --no-audit --no-fund)
  echo "    bun $("$PEER_DIR/node_modules/@oven/bun-linux-x64/bin/bun" --version)"
else
  echo "==> skipping bun: @oven/bun-linux-x64 is for Linux x86-64 and this is $(uname -s)/$(uname -m)"
fi
echo "==> done: cargo test --test reference_clients can now run the reference clients, and quotehub-bench its peers"
