#!/usr/bin/env bash
# Rewrites the bundled feed from its deterministic generator. The result must
# be byte-identical to what is committed unless the generator was changed on
# purpose (tests/bundled_feed.rs checks this).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --release -p quotehub -- synth --out feeds/us-equities-2026-11-20.jsonl
