#!/usr/bin/env bash
# A whole `tagwall sync` of the four clouds from a local mirror directory with three rulesets,
# release binary, SQLite store: a new week (each cloud's next file arrives, reports and rulesets
# are rewritten) and an unchanged week (everything already stored and published).
# Wall time and peak memory (max RSS) of 7 runs each; the median is reported. The new week is
# measured twice: with [output] validate = "auto" (nft -c, ipset restore and iptables-restore
# --test in a private namespace, when installed) and with "never" (tagwall's line checks only).
# Usage: bash benches/sync.sh   (from the repository root, ../shared beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/servicetags
[ -d "$data/Public" ] || { echo "needs $data" >&2; exit 1; }
cargo build --release -q
bin=$PWD/target/release/tagwall
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/old" "$dir/new"
for f in Public/ServiceTags_Public_20250721 AzureGovernment/ServiceTags_AzureGovernment_20260713 \
         China/ServiceTags_China_20260713 AzureGermany/ServiceTags_AzureGermany_20220228; do
  cp "$data/$f.json.gz" "$dir/old/"
done
cp "$dir"/old/* "$dir/new/"
for f in Public/ServiceTags_Public_20250728 AzureGovernment/ServiceTags_AzureGovernment_20260720 \
         China/ServiceTags_China_20260720 AzureGermany/ServiceTags_AzureGermany_20220307; do
  cp "$data/$f.json.gz" "$dir/new/"
done
cat > "$dir/tagwall.toml" <<TOML
[store]
url = "sqlite://$dir/run/tagwall.db"
[output]
dir = "$dir/run/out"
[fetch]
clouds = ["all"]
[[ruleset]]
name = "entra-connector"
tags = ["AzureCloud"]
protocol = "tcp"
ports = [443, 80]
[[ruleset]]
name = "storage-eu"
tags = ["Storage.WestEurope", "Storage.NorthEurope"]
max_entries = 200
[[ruleset]]
name = "gov-frontdoor"
cloud = "AzureGovernment"
tags = ["AzureFrontDoor.*"]
TOML
cd "$dir"
mkdir run
"$bin" --config tagwall.toml sync --source old >/dev/null 2>&1
cp -a run template
measure() { # label, then the command's arguments; prints the median of 7 runs
  local label=$1; shift
  for i in 1 2 3 4 5 6 7; do
    case "$label" in "new week"*) rm -rf run; cp -a template run ;; esac
    /usr/bin/time -f "%e %M" -o time.txt "$bin" --config tagwall.toml "$@" >/dev/null 2>&1 || test $? -eq 3
    cat time.txt
  done | sort -n | awk -v l="$label" '{t[NR]=$1; m[NR]=$2} END {
    asort(m); printf "%s: median %.0f ms wall (min %.0f, max %.0f), peak RSS median %.1f MB (max %.1f)\n",
      l, t[4]*1000, t[1]*1000, t[7]*1000, m[4]/1024, m[7]/1024 }'
}
sed -i 's/^\[output\]$/[output]\nvalidate = "never"/' tagwall.toml
measure "new week, validate = never" sync --source new
sed -i '/^validate = "never"$/d' tagwall.toml
measure "new week" sync --source new
# The last "new week" run left everything stored and published: now nothing changes.
measure "unchanged week" sync --source new
