#!/usr/bin/env bash
# The weekly case as a cron job runs it: a whole `tagwall import` process importing the following
# week (2025-07-28) into a SQLite store holding the previous one (2025-07-21), the store copied
# fresh for every run. Each binary given (the release build first, then any others, e.g. a build
# of an earlier commit for a side-by-side comparison) runs in turn, RUNS times (default 20), and
# the median wall time of each is printed.
# Usage: bash benches/weekly.sh [OTHER_TAGWALL_BINARY...]   (from the repository root, ../shared beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/servicetags/Public
[ -d "$data" ] || { echo "needs $data" >&2; exit 1; }
cargo build --release -q
runs=${RUNS:-20}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
binaries=("$PWD/target/release/tagwall" "$@")
"${binaries[0]}" --db "sqlite://$dir/base.db" import "$data/ServiceTags_Public_20250721.json.gz" >/dev/null
# Fold the WAL into the file, so that a copy of the file is the whole store.
python3 -c 'import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute("PRAGMA wal_checkpoint(TRUNCATE)")' "$dir/base.db"
for run in $(seq "$runs"); do
  for b in "${!binaries[@]}"; do
    rm -f "$dir"/work.db*
    cp "$dir/base.db" "$dir/work.db"
    start=$(date +%s%N)
    "${binaries[$b]}" --db "sqlite://$dir/work.db" import "$data/ServiceTags_Public_20250728.json.gz" >/dev/null
    end=$(date +%s%N)
    echo "$b $(( (end - start) / 1000 ))" >>"$dir/times"
  done
done
python3 - "$dir/times" "${binaries[@]}" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    b, us = line.split()
    times.setdefault(int(b), []).append(int(us) / 1000)
for b, name in enumerate(sys.argv[2:]):
    t = times[b]
    print(f"{name}: median {statistics.median(t):.1f} ms (min {min(t):.1f}, max {max(t):.1f}, {len(t)} runs)")
PY
