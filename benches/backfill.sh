#!/usr/bin/env bash
# Backfill of all 38 shared Public files into an empty SQLite store with the release binary:
# wall time, peak memory (max RSS) and the store's size afterwards, including the originals.
# Usage: bash benches/backfill.sh   (from the repository root, ../shared beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/servicetags/Public
[ -d "$data" ] || { echo "needs $data" >&2; exit 1; }
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for run in 1 2 3; do
  rm -f "$dir"/tagwall.db*
  /usr/bin/time -f "run $run: %e s wall, %M KB peak RSS" \
    target/release/tagwall --db "sqlite://$dir/tagwall.db" import "$data" | tail -n 1
done
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
