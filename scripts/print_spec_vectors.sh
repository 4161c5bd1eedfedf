#!/usr/bin/env bash
# Prints the hex test vectors of crates/quotehub-proto/SPEC.md as the encoder
# writes them today, ready to paste into the spec after a deliberate change.
set -euo pipefail
cd "$(dirname "$0")/.."
{ QUOTEHUB_PRINT_VECTORS=1 cargo test -q -p quotehub-proto --lib spec_vectors_match_the_encoder -- --nocapture 2>/dev/null || true; } \
  | sed -n '/^### /,/^```$/p'
