#!/usr/bin/env bash
# Where the hub's time per delivery goes (issue 18 item 6): runs the default
# `quotehub-bench` against the hub alone, and while its measured phase runs,
# counts on the hub process, per delivery: context switches (per thread, from
# /proc), system calls (perf stat, raw_syscalls), CPU, and per published
# quote the messages written; then samples where its CPU goes (perf record).
#
#   scripts/profile_wakeups.sh [OUT] [-- extra quotehub-bench args]
#
# Needs perf (software events suffice; no hardware counters are used).
# Writes OUT/counts.txt, OUT/perf-report.txt, OUT/syscalls.txt. The bench
# phase must outlast SETTLE + 2 windows + 2 s: pass `-- --duration 20`.
set -euo pipefail

out=${1:-target/profile-wakeups}
shift || true
[[ ${1:-} == -- ]] && shift
mkdir -p "$out"
bin=${QUOTEHUB_BENCH:-target/release/quotehub-bench}
window=${WINDOW:-5}

"$bin" --skip-floor --skip-peer --skip-bun --out "$out/bench" "$@" >"$out/bench.txt" 2>&1 &
bench=$!

# The hub is the bench's child named quotehub.
hub=
for _ in $(seq 200); do
    hub=$(pgrep -P "$bench" -x quotehub || true)
    [[ -n $hub ]] && break
    sleep 0.1
done
[[ -n $hub ]] || { echo "no hub started" >&2; exit 1; }
port=$(tr '\0' ' ' </proc/"$hub"/cmdline | sed -n 's/.*--listen 127.0.0.1:\([0-9]*\).*/\1/p')

metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }
snapshot() {
    # thread name, voluntary, nonvoluntary switches; then the process's CPU ticks
    for task in /proc/"$hub"/task/*; do
        printf '%s %s %s\n' "$(tr ' ' _ <"$task"/comm)" \
            "$(awk '/^voluntary_ctxt/ { print $2 }' "$task"/status)" \
            "$(awk '/^nonvoluntary_ctxt/ { print $2 }' "$task"/status)"
    done
    echo "cpu_ticks $(awk '{ print $14 + $15 }' /proc/"$hub"/stat) 0"
    echo "deliveries $(metric quotehub_records_queued_total) 0"
    echo "messages $(metric quotehub_messages_written_total) 0"
    echo "events $(metric quotehub_events_in_total) 0"
}

# Past the hub's start, the clients' subscriptions and the warm-up.
sleep "${SETTLE:-5}"
snapshot >"$out/before.txt"
perf stat -e context-switches,cpu-migrations,raw_syscalls:sys_enter,task-clock -p "$hub" -o "$out/perf-stat.txt" -- sleep "$window"
snapshot >"$out/after.txt"
perf trace -s -p "$hub" -o "$out/syscalls.txt" -- sleep 2 || true
perf record -F 2000 -g -p "$hub" -o "$out/perf.data" -- sleep "$window" 2>/dev/null || true
wait "$bench" || true
perf report -i "$out/perf.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null | head -150 >"$out/perf-report.txt" || true

python3 - "$out" <<'EOF'
import sys, collections
out = sys.argv[1]
def read(name):
    rows = collections.defaultdict(lambda: [0, 0])
    for line in open(f"{out}/{name}"):
        comm, vol, invol = line.split()
        rows[comm][0] += int(vol or 0); rows[comm][1] += int(invol or 0)
    return rows
a, b = read("before.txt"), read("after.txt")
d = {k: (b[k][0] - a[k][0], b[k][1] - a[k][1]) for k in b}
deliveries = d.pop("deliveries")[0]; messages = d.pop("messages")[0]; events = d.pop("events")[0]
ticks = d.pop("cpu_ticks")[0]
lines = [f"window: {deliveries} deliveries, {events} quotes, {messages} messages written, {ticks / 100:.2f} CPU s",
         f"CPU ns per delivery: {ticks * 1e7 / max(deliveries, 1):.0f}",
         f"messages per delivery: {messages / max(deliveries, 1):.3f}"]
for comm, (vol, invol) in sorted(d.items()):
    lines.append(f"{comm}: {vol / max(deliveries, 1):.3f} voluntary + {invol / max(deliveries, 1):.3f} involuntary switches per delivery"
                 f" ({vol / max(events, 1):.2f} + {invol / max(events, 1):.2f} per quote)")
vol = sum(v for v, _ in d.values()); invol = sum(i for _, i in d.values())
lines.append(f"all threads: {(vol + invol) / max(deliveries, 1):.3f} switches per delivery, {(vol + invol) / max(events, 1):.2f} per quote")
stat = open(f"{out}/perf-stat.txt").read()
for line in stat.splitlines():
    parts = line.split()
    if len(parts) >= 2 and parts[1] == "raw_syscalls:sys_enter":
        calls = int(parts[0].replace(",", ""))
        lines.append(f"system calls (perf stat, a window of the same length): {calls} ~ {calls / max(deliveries, 1):.2f} per delivery")
open(f"{out}/counts.txt", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
