#!/usr/bin/env bash
# Scale-out on one machine, in one command: a local nats-server with
# JetStream, one ingest hub replaying the bundled feed onto it, and two edge
# hubs serving its records on their own ports. Ctrl-C stops them all.
#
#   scripts/cluster.sh
#
# then, in another terminal, subscribe on either edge (the same numbers on both):
#
#   target/release/quotehub subscribe --url ws://127.0.0.1:8081/v1/quotes AAPL
#   target/release/quotehub subscribe --url ws://127.0.0.1:8082/v1/quotes AAPL
#
# Settings (environment): NATS_PORT (4222), INGEST_PORT (8080), EDGE_PORTS
# ("8081 8082"), STANDBY_PORT (unset: none; a port starts a second ingest
# hub on the same feed, the standby that takes over if the first dies), QUOTEHUB_BIN (a built `quotehub`; default: build the release
# binary), CLUSTER_DIR (where the JetStream store and logs go; default: a new
# temporary directory, removed on exit).
set -euo pipefail
cd "$(dirname "$0")/.."

NATS_PORT=${NATS_PORT:-4222}
INGEST_PORT=${INGEST_PORT:-8080}
EDGE_PORTS=${EDGE_PORTS:-"8081 8082"}

if ! command -v nats-server >/dev/null 2>&1; then
  echo "cluster.sh: needs nats-server (with JetStream): sudo apt-get install nats-server" >&2
  exit 1
fi
if [ -z "${QUOTEHUB_BIN:-}" ]; then
  echo "== cargo build --release -p quotehub"
  cargo build --release --locked -p quotehub
  QUOTEHUB_BIN=target/release/quotehub
fi

if [ -n "${CLUSTER_DIR:-}" ]; then
  mkdir -p "$CLUSTER_DIR"
  remove_dir=false
else
  CLUSTER_DIR=$(mktemp -d -t quotehub-cluster.XXXXXX)
  remove_dir=true
fi

pids=()
stop() {
  trap - INT TERM EXIT
  echo "== stopping (edges, ingest hub, nats-server)"
  # Hubs first (they drain their clients), the bus last.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if $remove_dir; then rm -rf "$CLUSTER_DIR"; fi
}
trap stop INT TERM EXIT

# Runs "$@" in the background, each output line prefixed with [name].
start() {
  local name=$1
  shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

start nats nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$CLUSTER_DIR/jetstream"
bus="nats://127.0.0.1:$NATS_PORT"
# The hubs wait for the bus themselves (and say so once), so no readiness
# check is needed here: each prints "quotehub ready" once it has joined.
start ingest "$QUOTEHUB_BIN" serve --bus "$bus" --role ingest --listen "127.0.0.1:$INGEST_PORT"
if [ -n "${STANDBY_PORT:-}" ]; then
  start standby "$QUOTEHUB_BIN" serve --bus "$bus" --role ingest --listen "127.0.0.1:$STANDBY_PORT"
fi
n=0
for port in $EDGE_PORTS; do
  n=$((n + 1))
  start "edge$n" "$QUOTEHUB_BIN" serve --bus "$bus" --role edge --listen "127.0.0.1:$port"
done

echo "== nats-server on $bus; ingest hub on ws://127.0.0.1:$INGEST_PORT/v1/quotes${STANDBY_PORT:+ (standby on $STANDBY_PORT)};" \
  "edges on $(for port in $EDGE_PORTS; do printf 'ws://127.0.0.1:%s/v1/quotes ' "$port"; done)"
echo "== Ctrl-C stops them all"
# Until Ctrl-C (the trap stops them all), or until one of them exits: then
# the rest are stopped too, and the script fails.
if wait -n "${pids[@]}"; then status=0; else status=$?; fi
if [ "$status" -lt 128 ]; then
  echo "== a process of the cluster exited (status $status); stopping the rest" >&2
  exit 1
fi
