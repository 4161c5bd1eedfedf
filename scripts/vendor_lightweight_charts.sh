#!/usr/bin/env bash
# Vendors TradingView's lightweight-charts (npm) for the quote board:
# crates/quotehub-server/web/vendor/ (see its README.md for the pinned version).
# usage: scripts/vendor_lightweight_charts.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/vendor_lightweight_charts.sh VERSION}
dest=crates/quotehub-server/web/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# npm pack verifies the tarball against the registry's integrity hash.
(cd "$work" && npm pack "lightweight-charts@$version" --json >pack.json && tar xzf "lightweight-charts-$version.tgz")
cp "$work/package/dist/lightweight-charts.standalone.production.mjs" "$dest/"
cp "$work/package/LICENSE" "$dest/lightweight-charts.LICENSE"
grep -E '"(integrity|shasum)"' "$work/pack.json"
echo "vendored lightweight-charts $version into $dest: update $dest/README.md"
