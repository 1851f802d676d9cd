#!/usr/bin/env bash
# The restore rows of docs/BENCHMARKS.md, on the 1 GiB set (mkdata.py) plus one 4 KiB file,
# backed up as one package to a local station:
#   - full restore (`agent restore --to DIR`) against `zstd -d | tar -x` of the same archive,
#     bare and followed by `sync -f` (the durability the agent gives);
#   - one 4 KiB file out of that package: wall time and bytes read from the station.
# Page cache dropped before each run (needs root). Release binaries: cargo build --release -p catcher -p agent
# Usage: bench/scripts/restore.sh [RUNS] [WORKDIR]
set -euo pipefail
RUNS=${1:-3}
B=${2:-/tmp/eb-restore}
cd "$(dirname "$0")/../.."
C=$PWD/target/release/catcher
A=$PWD/target/release/agent
PORT=50998

rm -rf "$B"
mkdir -p "$B/station"
python3 bench/scripts/mkdata.py "$B/data"
# The probe: 4 KiB of text between the blobs and the small files (sorted by name in the package).
python3 -c "import random; r=random.Random(7); open('$B/data/m-probe-4k.txt','w').write(''.join(r.choice('abcdefgh \n') for _ in range(4096)))"

CATCHER_LISTEN=127.0.0.1:$PORT CATCHER_DATABASE_URL="sqlite://$B/c.db?mode=rwc" "$C" >"$B/catcher.log" 2>&1 &
CPID=$!
trap 'kill $CPID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

cat >"$B/agent.toml" <<TOML
source_id = "bench-restore"
catcher_url = "http://127.0.0.1:$PORT"
state_dir = "$B/agent-state"
max_package_bytes = 2147483648
[[folders]]
path = "$B/data"
package_type = "user_data"
[[stations]]
id = "hot-local"
kind = "local"
uri = "$B/station"
[safety]
enabled = false
TOML

"$A" --config "$B/agent.toml" backup --once >/dev/null
ARCHIVE=$(ls "$B"/station/*/*.tar.zst)
echo "archive: $(stat -c %s "$ARCHIVE") bytes"

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
secs() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }

for i in $(seq "$RUNS"); do
  rm -rf "$B/out" "$B/tar"; mkdir -p "$B/out" "$B/tar"; drop
  full=$(secs "$A" --config "$B/agent.toml" restore --to "$B/out")
  drop
  bare=$(secs sh -c "zstd -d -q -c '$ARCHIVE' | tar -x -C '$B/tar'")
  rm -rf "$B/tar"; mkdir -p "$B/tar"; drop
  durable=$(secs sh -c "zstd -d -q -c '$ARCHIVE' | tar -x -C '$B/tar' && sync -f '$B/tar'")
  echo "run $i: agent restore ${full}s, zstd -d | tar -x ${bare}s, + sync -f ${durable}s"
done
rm -rf "$B/out" "$B/tar"

for i in $(seq "$RUNS"); do
  rm -rf "$B/one"; mkdir -p "$B/one"; drop
  cold=$(secs "$A" --config "$B/agent.toml" restore --to "$B/one" --path m-probe-4k.txt)
  # Warm: binaries and the catcher's database cached, the station's pages dropped.
  rm -rf "$B/one"; mkdir -p "$B/one"
  "$A" --config "$B/agent.toml" restore --to "$B/warmup" --path m-probe-4k.txt >/dev/null; rm -rf "$B/warmup"
  python3 -c "import os; fd=os.open('$ARCHIVE', os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)"
  s=$(date +%s.%N)
  out=$("$A" --config "$B/agent.toml" restore --to "$B/one" --path m-probe-4k.txt)
  warm=$(echo "$(date +%s.%N) - $s" | bc)
  read_bytes=$(grep -o '[0-9]* bytes read from stations' <<<"$out" | cut -d' ' -f1)
  cmp "$B/data/m-probe-4k.txt" "$B/one/${B#/}/data/m-probe-4k.txt"
  echo "run $i: one 4 KiB file cold ${cold}s, warm ${warm}s, ${read_bytes} bytes read from the station"
done
