#!/usr/bin/env bash
# Catcher replicas on one PostgreSQL database (docs/BENCHMARKS.md, "Replicas"):
#   replicas.sh events  — events/s with 1, 2 and 3 replicas, agents spread over them, ten Watch
#                         subscribers on the last one; each replica's CPU over the run
#   replicas.sh failover — the lease holder SIGKILLed: time until another replica holds it (×5)
# Settings: AGENTS (1000), DURATION (20 s), DRAIN (60 s: at full speed an ack can wait ~15 s),
# REPLICAS ("1 2 3"), RATE (events/s in all; unset = as fast as acks allow), AGENTS_ON_FIRST=1
# (every agent on the first replica, the subscribers on the last: the feed between replicas).
# Release builds first: cargo build --release -p catcher -p edge-bench --bins
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release}
PG=${EDGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
AGENTS=${AGENTS:-1000}
DURATION=${DURATION:-20}
DRAIN=${DRAIN:-60}
WORK=$(mktemp -d); echo "work dir: $WORK" >&2
PIDS=()
trap 'kill -9 "${PIDS[@]}" 2>/dev/null || true; drop_dbs; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

DBS=()
fresh_db() { # sets DB_URL to a new empty database (dropped on exit)
  local name="ebk_bench_$(date +%s%N)"
  psql -q "$PG" -c "CREATE DATABASE $name" >/dev/null
  DBS+=("$name")
  DB_URL="${PG%/*}/$name"
}

drop_dbs() {
  for d in "${DBS[@]}"; do psql -q "$PG" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null || true; done
}

start_replica() { # start_replica DB_URL INDEX [ENV...] -> sets ADDR[INDEX], PID[INDEX]
  local url=$1 i=$2; shift 2
  local out="$WORK/catcher-$i.out"
  env CATCHER_LOG_LEVEL=info CATCHER_DATA_DIR="$WORK/data" "$@" \
    "$BIN/catcher" --listen 127.0.0.1:0 --database-url "$url" >"$out" 2>"$WORK/catcher-$i.log" &
  PID[$i]=$!
  PIDS+=("$!")
  for _ in $(seq 600); do
    ADDR[$i]=$(sed -n 's/^catcher listening on //p' "$out")
    [ -n "${ADDR[$i]}" ] && return 0
    sleep 0.1
  done
  echo "replica $i did not start" >&2
  exit 1
}

calc() { awk "BEGIN { print $* }"; }

cpu_secs() { # utime + stime of a process, in seconds
  awk -v t="$(getconf CLK_TCK)" '{ print ($14 + $15) / t }' "/proc/$1/stat"
}

events() {
  for n in ${REPLICAS:-1 2 3}; do
    fresh_db
    local url=$DB_URL
    rm -rf "$WORK/data"
    declare -A ADDR=() PID=()
    for i in $(seq 1 "$n"); do start_replica "$url" "$i" CATCHER_WATCH_STREAMS_PER_CREDENTIAL=64; done
    local at=() before=()
    for i in $(seq 1 "$n"); do
      if [ -z "${AGENTS_ON_FIRST:-}" ] || [ "$i" = 1 ]; then at+=(--agents-at "http://${ADDR[$i]}"); fi
      before+=("$(cpu_secs "${PID[$i]}")")
    done
    local rate=(); [ -n "${RATE:-}" ] && rate=(--rate "$RATE")
    local t0; t0=$(date +%s.%N)
    CATCHER_TOKEN=$(cat "$WORK/data/admin.token") "$BIN/edge-loadgen" stream --catcher "http://${ADDR[1]}" \
      --pid "${PID[1]}" "${at[@]}" --watch-at "http://${ADDR[$n]}" -n "$AGENTS" -m 10 --duration "$DURATION" \
      --drain-secs "$DRAIN" "${rate[@]}" \
      >"$WORK/run-$n.json" 2>"$WORK/run-$n.err"
    local wall; wall=$(calc "$(date +%s.%N) - $t0")
    local cpus=""
    for i in $(seq 1 "$n"); do
      cpus+=" $(calc "$(cpu_secs "${PID[$i]}") - ${before[$((i - 1))]}")"
    done
    python3 - "$WORK/run-$n.json" "$n" "$wall" $cpus <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2]); wall = float(sys.argv[3])
for e in r.get("errors", [])[:5]:
    print("  error:", e)
cpu = [float(c) for c in sys.argv[4:]]
lat = r.get("watch_latency", {})
print(f"replicas={n} events/s={r['events_per_sec']:.0f} connected={r['agents_connected']} "
      f"errors={r['protocol_errors'] + r['stream_errors'] + r['events_rejected']} unacked={r['events_unacked']} "
      f"watch p50={lat.get('p50_ms', 0):.1f}ms p99={lat.get('p99_ms', 0):.1f}ms "
      f"cpu-seconds per replica over {wall:.0f}s: {' '.join(f'{c:.1f}' for c in cpu)}")
PY
    for i in $(seq 1 "$n"); do kill -9 "${PID[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
  done
}

holder() { # the index of the replica whose log says last that it holds the lease
  for i in "$@"; do
    local log="$WORK/catcher-$i.log"
    local took lost
    took=$(grep -n "holds the singleton lease" "$log" | tail -1 | cut -d: -f1)
    lost=$(grep -n "lost the singleton lease" "$log" | tail -1 | cut -d: -f1)
    if [ -n "$took" ] && { [ -z "$lost" ] || [ "$took" -gt "$lost" ]; }; then echo "$i"; return; fi
  done
}

failover() {
  for run in 1 2 3 4 5; do
    fresh_db
    local url=$DB_URL
    rm -rf "$WORK/data"
    declare -A ADDR=() PID=()
    for i in 1 2 3; do start_replica "$url" "$i"; done
    sleep 2
    local h; h=$(holder 1 2 3)
    kill -9 "${PID[$h]}"
    local t0; t0=$(date +%s.%N)
    local others=(); for i in 1 2 3; do [ "$i" != "$h" ] && others+=("$i"); done
    until [ -n "$(holder "${others[@]}")" ]; do sleep 0.05; done
    echo "run $run: replica $h killed; replica $(holder "${others[@]}") holds the lease after $(calc "$(date +%s.%N) - $t0") s"
    for i in 1 2 3; do kill -9 "${PID[$i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
  done
}

"${1:-events}"
