#!/usr/bin/env bash
# The whole test suite, as README.md and .ci/run run it.
#
# Besides Rust, some tests drive real third-party clients and a real browser:
# Python's `websockets`, Node's `ws`, and Chromium (through playwright-core).
# This installs what is missing (Chromium from Debian's packages, the Python
# venv and npm packages through scripts/setup_clients.sh), then runs
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

bash scripts/setup_clients.sh

echo "== cargo test --workspace --locked"
QUOTEHUB_REQUIRE_ALL=1 cargo test --workspace --locked "$@"
