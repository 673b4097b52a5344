#!/usr/bin/env bash
# Aggregation side by side with firehol's iprange (C): every IPv4 prefix of the shared Public file
# with the most of them (67,695 in ServiceTags_Public_20250714), merged into the fewest CIDRs by
# `iprange FILE` and by `tagwall aggregate FILE`. Checks that both print the same CIDRs, then
# times both processes with hyperfine.
# Usage: bash benches/iprange.sh   (from the repository root, ../shared beside it;
#        needs iprange and hyperfine: apt-get install iprange hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
file=../shared/data/servicetags/Public/ServiceTags_Public_20250714.json.gz
[ -f "$file" ] || { echo "needs $file" >&2; exit 1; }
for tool in iprange hyperfine; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release -q
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
zcat "$file" | python3 -c '
import json, sys
for v in json.load(sys.stdin)["values"]:
    for p in v["properties"]["addressPrefixes"]:
        if ":" not in p:
            print(p)' > "$dir/v4.txt"
echo "input: $(wc -l < "$dir/v4.txt") IPv4 prefixes"
iprange "$dir/v4.txt" > "$dir/iprange.out"
target/release/tagwall aggregate "$dir/v4.txt" > "$dir/tagwall.out"
# iprange prints a /32 as the bare address.
sed 's#/32$##' "$dir/tagwall.out" | cmp - "$dir/iprange.out" || { echo "the outputs differ" >&2; exit 1; }
echo "output: $(wc -l < "$dir/tagwall.out") CIDRs, identical from both"
hyperfine -N --warmup 5 --runs 50 \
  "iprange $dir/v4.txt" \
  "target/release/tagwall aggregate $dir/v4.txt"
