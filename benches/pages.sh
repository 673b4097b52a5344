#!/usr/bin/env bash
# The review site's pages from memory: server time per page (the access log's `ms`, measured by
# tagwall from the request to the response) on a store holding the shared history — every
# Public week, 2019–2025 — with the example settings and a withheld change of entra-connector
# and of a ruleset of all of AzureCloud (published at 2025-03-31, withheld at 2025-07-28 under a
# 0.01% guard).
# Each page is requested 200 times by one client (curl --compressed, as browsers ask for gzip;
# keep-alive off), after 5 warm-up requests; the median and 99th percentile of the server's times are reported with the page's
# size. Then wrk (2 threads, 32 connections, 10 s) on `/` for pages per second.
# Usage: bash benches/pages.sh   (from the repository root, ../shared beside it; needs wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/servicetags
[ -d "$data/Public" ] || { echo "needs $data" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q
bin=$PWD/target/release/tagwall
dir=$(mktemp -d)
tw=
trap 'kill $tw 2>/dev/null; rm -rf "$dir"' EXIT
mkdir -p "$dir/mirror"
cp src/example.toml "$dir/tagwall.toml"
cd "$dir"
start=$(date +%s)
printf '\n[[ruleset]]\nname = "azure-cloud"\ncloud = "Public"\ntags = ["AzureCloud"]\nformats = ["txt"]\n' >> tagwall.toml
# Published at 2025-03-31; the weeks up to 2025-07-21 imported after: the withheld change of
# 2025-07-28 holds four months of churn.
ls "$OLDPWD/$data"/Public/*.json.gz | awk -F_ '$3 <= "20250331"' | xargs "$bin" import >/dev/null
cp "$OLDPWD/$data/Public/ServiceTags_Public_20250331.json.gz" mirror/
"$bin" sync --source mirror >/dev/null
ls "$OLDPWD/$data"/Public/*.json.gz | awk -F_ '$3 > "20250331" && $3 < "20250728"' | xargs "$bin" import >/dev/null
sed -i 's/^\[guard\]$/[guard]\nmax_added_percent = 0.01\nmax_removed_percent = 0.01/' tagwall.toml
cp "$OLDPWD/$data/Public/ServiceTags_Public_20250728.json.gz" mirror/
"$bin" sync --source mirror >/dev/null || [ $? = 3 ]
[ -f out/.tagwall/withheld-entra-connector.json ] || { echo "no withheld change to show" >&2; exit 1; }
echo "store: $("$bin" snapshots | wc -l) snapshots, set up in $(( $(date +%s) - start )) s"
token=bench-token-0123456789abcdef
TAGWALL_SERVE_TOKENS=$token "$bin" --log-format json serve --listen 127.0.0.1:18190 2>serve.log &
tw=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:18190/healthz >/dev/null && break; sleep 0.1; done
auth="Authorization: Bearer $token"
pages=(/ /rulesets/entra-connector/ /pending/entra-connector /pending/azure-cloud /reports/ /reports/Public/ /reports/Public/2025-07-28 "/lookup?q=20.38.98.1")
printf '%-32s %10s %10s %10s %10s\n' page bytes gzip "median ms" "p99 ms"
for page in "${pages[@]}"; do
  for _ in 1 2 3 4 5; do curl -sf -H "$auth" "http://127.0.0.1:18190$page" >/dev/null; done
  bytes=$(curl -sf -H "$auth" "http://127.0.0.1:18190$page" | wc -c)
  gz=$(curl -sf -H "$auth" -H 'Accept-Encoding: gzip' "http://127.0.0.1:18190$page" | wc -c)
  sleep 0.3
  : > serve.log
  for _ in $(seq 200); do curl -sf --compressed -H "$auth" -o /dev/null "http://127.0.0.1:18190$page"; done
  sleep 0.3
  grep -ao '"ms":[0-9.]*' serve.log | cut -d: -f2 | sort -n | awk -v page="$page" -v bytes="$bytes" -v gz="$gz" \
    '{a[NR]=$1} END {printf "%-32s %10d %10d %10.3f %10.3f\n", page, bytes, gz, a[int((NR+1)/2)], a[int(NR*0.99)]}'
done
wrk -t2 -c32 -d10s -H "$auth" http://127.0.0.1:18190/ | awk '/Requests\/sec/ {print "wrk on /: " $2 " pages/s"}'
echo "tagwall peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$tw/status)"
