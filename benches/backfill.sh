#!/usr/bin/env bash
# Backfill of all 38 shared Public files into an empty SQLite store with the release binary,
# side by side with the yardstick (benches/backfill_yardstick.py: a Python loop that only parses
# each file and diffs its (tag, prefix) set with the previous one), alternating, five runs each:
# medians, the ratio, peak memory (max RSS) and the store's size afterwards.
# Usage: bash benches/backfill.sh   (from the repository root, ../shared beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/servicetags/Public
[ -d "$data" ] || { echo "needs $data" >&2; exit 1; }
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for run in 1 2 3 4 5; do
  /usr/bin/time -a -o "$dir/python.times" -f "%e %M" \
    python3 benches/backfill_yardstick.py "$data" >/dev/null
  rm -f "$dir"/tagwall.db*
  /usr/bin/time -a -o "$dir/tagwall.times" -f "%e %M" \
    target/release/tagwall --db "sqlite://$dir/tagwall.db" import "$data" >/dev/null
done
python3 - "$dir" <<'PY'
import statistics, sys
d = sys.argv[1]
def load(name):
    rows = [l.split() for l in open(f"{d}/{name}.times") if l.strip() and l[0].isdigit()]
    return [float(r[0]) for r in rows], [int(r[1]) for r in rows]
pt, pm = load("python")
tt, tm = load("tagwall")
print(f"python yardstick: median {statistics.median(pt):.2f} s (min {min(pt):.2f}, max {max(pt):.2f}), {max(pm)/1024:.0f} MB peak RSS")
print(f"tagwall import:   median {statistics.median(tt):.2f} s (min {min(tt):.2f}, max {max(tt):.2f}), {max(tm)/1024:.0f} MB peak RSS")
print(f"ratio (medians):  {statistics.median(tt)/statistics.median(pt):.2f}x")
PY
# Fold the WAL into the main file so the size is the store's whole size.
target/release/tagwall --db "sqlite://$dir/tagwall.db" snapshots >/dev/null
python3 - "$dir/tagwall.db" <<'PY'
import sqlite3, sys, os
path = sys.argv[1]
c = sqlite3.connect(path)
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
size = os.path.getsize(path)
blobs = c.execute("select sum(length(raw_blob)), sum(raw_size) from snapshots").fetchone()
rows = {t: c.execute(f"select count(*) from {t}").fetchone()[0]
        for t in ("snapshots", "tag_versions", "prefix_intervals", "head_prefixes")}
pairs = c.execute("select sum(prefix_count) from snapshots").fetchone()[0]
print(f"store file: {size/1e6:.1f} MB; originals {blobs[1]/1e6:.1f} MB stored in {blobs[0]/1e3:.0f} KB")
print(f"rows: {rows}; (tag, prefix) pairs over all snapshots: {pairs}")
PY
