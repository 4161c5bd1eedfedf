#!/usr/bin/env bash
# The whole test suite, as README.md and .ci/run run it.
#
# Besides Rust, some tests drive real third-party clients, a real browser and
# a real message bus: Python's `websockets`, Node's `ws`, Chromium (through
# playwright-core) and nats-server with JetStream (the bus tests).
# This installs what is missing (Chromium and nats-server from Debian's
# packages, the Python venv and npm packages through
# scripts/setup_clients.sh), then runs
# `cargo test` with QUOTEHUB_REQUIRE_ALL=1 so that none of those tests can
# quietly skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian package) for the quote board test"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "scripts/test.sh: the quote board test needs Chromium: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

if ! command -v nats-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing nats-server (Debian package) for the bus tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  else
    echo "scripts/test.sh: the bus tests need nats-server: sudo apt-get install nats-server" >&2
    exit 1
  fi
fi

bash scripts/setup_clients.sh

echo "== cargo test --workspace --locked"
QUOTEHUB_REQUIRE_ALL=1 cargo test --workspace --locked "$@"
