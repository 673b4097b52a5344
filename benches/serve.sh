#!/usr/bin/env bash
# `tagwall serve` against nginx serving the same file, side by side on loopback, with wrk
# (2 threads, 32 connections, 10 s per run): the entra-connector IPv4 list (real Public week,
# the example settings) with a Bearer token, and the 304 path (If-None-Match with each server's
# own ETag). nginx: sendfile on, etag on, worker_processes auto. Twice: with access logs off on
# both (nginx access_log off; tagwall RUST_LOG=info,tagwall::access=off), and on on both (nginx's
# default combined log to a file; tagwall's default access log as JSON lines to a file). Runs
# alternate (tagwall, nginx) 5 times per case; the medians of requests/s and p99 latency are
# reported, with tagwall's peak RSS (VmHWM) at the end. Last, the 200 case again with tagwall's
# stderr blocked (a full pipe nobody reads) against nginx with its access log on: serving must not
# slow down; the access log lines dropped meanwhile are read from /metrics.
# Usage: bash benches/serve.sh   (from the repository root, ../shared beside it; needs wrk, nginx)
set -euo pipefail
cd "$(dirname "$0")/.."
data=../shared/data/servicetags
[ -d "$data/Public" ] || { echo "needs $data" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "needs nginx (apt-get install nginx)" >&2; exit 1; }
cargo build --release -q
bin=$PWD/target/release/tagwall
dir=$(mktemp -d)
mkdir -p "$dir/mirror"
cp "$data/Public/ServiceTags_Public_20250728.json.gz" "$dir/mirror/"
cp src/example.toml "$dir/tagwall.toml"
(cd "$dir" && "$bin" sync --source mirror >/dev/null)
# nginx's workers run as another user: let them read the published files.
chmod -R a+rX "$dir"
file=rulesets/entra-connector/entra-connector.ipv4.txt
token=bench-token-0123456789abcdef
# Ports: tagwall and nginx without access logs, then with.
TW_OFF=18181 NG_OFF=18182 TW_ON=18183 NG_ON=18184 TW_BLK=18185
cat > "$dir/nginx.conf" <<CONF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log;
events { worker_connections 1024; }
http {
  sendfile on;
  etag on;
  default_type text/plain;
  server {
    listen 127.0.0.1:$NG_OFF;
    access_log off;
    location /rulesets/ { alias $dir/out/; }
  }
  server {
    listen 127.0.0.1:$NG_ON;
    access_log $dir/nginx-access.log;
    location /rulesets/ { alias $dir/out/; }
  }
}
CONF
"$NGINX" -c "$dir/nginx.conf" -p "$dir"
(cd "$dir" && RUST_LOG=info,tagwall::access=off TAGWALL_SERVE_TOKENS=$token \
  exec "$bin" serve --listen 127.0.0.1:$TW_OFF 2>"$dir/serve-off.log") &
tw_off=$!
(cd "$dir" && TAGWALL_SERVE_TOKENS=$token \
  exec "$bin" --log-format json serve --listen 127.0.0.1:$TW_ON 2>"$dir/serve-on.log") &
tw_on=$!
# A pipe the script holds open for reading and never reads: once 64 KiB are written, every
# write to tagwall's stderr blocks.
mkfifo "$dir/stderr.fifo"
exec 3<>"$dir/stderr.fifo"
(cd "$dir" && TAGWALL_SERVE_TOKENS=$token \
  exec "$bin" --log-format json serve --listen 127.0.0.1:$TW_BLK 2>"$dir/stderr.fifo") &
tw_blk=$!
trap 'kill $tw_off $tw_on $tw_blk 2>/dev/null; exec 3<&-; "$NGINX" -c "$dir/nginx.conf" -p "$dir" -s stop 2>/dev/null; rm -rf "$dir"' EXIT
for port in $TW_OFF $TW_ON $TW_BLK; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
done
TW_PORT=$TW_OFF NG_PORT=$NG_OFF
auth="Authorization: Bearer $token"
tw_etag=$(curl -sI -H "$auth" "http://127.0.0.1:$TW_PORT/$file" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
ng_etag=$(curl -sI "http://127.0.0.1:$NG_PORT/$file" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
cmp <(curl -sf -H "$auth" "http://127.0.0.1:$TW_PORT/$file") <(curl -sf "http://127.0.0.1:$NG_PORT/$file") \
  || { echo "the two servers answer differently: $(tail -3 "$dir/nginx-error.log")" >&2; exit 1; }
echo "file: $file ($(stat -c %s "$dir/out/entra-connector/entra-connector.ipv4.txt") bytes); tagwall ETag $tw_etag, nginx ETag $ng_etag"
# wrk's summary: requests/s and the 99th percentile latency (in ms).
run() { # port extra-header...
  local port=$1; shift
  local args=(-t2 -c32 -d10s --latency -H "$auth")
  for h in "$@"; do args+=(-H "$h"); done
  wrk "${args[@]}" "http://127.0.0.1:$port/$file" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; p99=v}
    /Non-2xx or 3xx/ {bad=$NF}
    END {printf "%s %s %s\n", rps, p99, (bad==""?0:bad)}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for logs in off on; do
if [ $logs = on ]; then TW_PORT=$TW_ON NG_PORT=$NG_ON; else TW_PORT=$TW_OFF NG_PORT=$NG_OFF; fi
for case in 200 304; do
  : > "$dir/tw" ; : > "$dir/ng"
  for i in 1 2 3 4 5; do
    if [ $case = 200 ]; then
      run $TW_PORT >> "$dir/tw"; run $NG_PORT >> "$dir/ng"
    else
      run $TW_PORT "If-None-Match: $tw_etag" >> "$dir/tw"; run $NG_PORT "If-None-Match: $ng_etag" >> "$dir/ng"
    fi
  done
  tw_rps=$(cut -d' ' -f1 "$dir/tw" | median); ng_rps=$(cut -d' ' -f1 "$dir/ng" | median)
  tw_p99=$(cut -d' ' -f2 "$dir/tw" | median); ng_p99=$(cut -d' ' -f2 "$dir/ng" | median)
  bad=$(cut -d' ' -f3 "$dir/tw" | sort -n | tail -1)
  printf 'access logs %s, %s: tagwall %s req/s (p99 %s ms), nginx %s req/s (p99 %s ms), ratio %.2f; tagwall non-2xx/3xx: %s\n' \
    "$logs" "$case" "$tw_rps" "$tw_p99" "$ng_rps" "$ng_p99" "$(echo "$tw_rps $ng_rps" | awk '{print $1/$2}')" "$bad"
  echo "  runs tagwall: $(cut -d' ' -f1 "$dir/tw" | tr '\n' ' ')"
  echo "  runs nginx:   $(cut -d' ' -f1 "$dir/ng" | tr '\n' ' ')"
done
done
# stderr blocked: fill the pipe first (a short run), then tagwall against nginx with its log on.
run $TW_BLK > /dev/null
: > "$dir/tw" ; : > "$dir/ng"
for i in 1 2 3 4 5; do run $TW_BLK >> "$dir/tw"; run $NG_ON >> "$dir/ng"; done
tw_rps=$(cut -d' ' -f1 "$dir/tw" | median); ng_rps=$(cut -d' ' -f1 "$dir/ng" | median)
tw_p99=$(cut -d' ' -f2 "$dir/tw" | median); ng_p99=$(cut -d' ' -f2 "$dir/ng" | median)
printf 'stderr blocked, 200: tagwall %s req/s (p99 %s ms), nginx (logs on) %s req/s (p99 %s ms), ratio %.2f\n' \
  "$tw_rps" "$tw_p99" "$ng_rps" "$ng_p99" "$(echo "$tw_rps $ng_rps" | awk '{print $1/$2}')"
echo "  runs tagwall: $(cut -d' ' -f1 "$dir/tw" | tr '\n' ' ')"
echo "  runs nginx:   $(cut -d' ' -f1 "$dir/ng" | tr '\n' ' ')"
echo "  $(curl -s -H "$auth" "http://127.0.0.1:$TW_BLK/metrics" | grep '^tagwall_serve_access_log_dropped_total')"
echo "access log lines: tagwall $(grep -c tagwall::access "$dir/serve-on.log"), nginx $(wc -l < "$dir/nginx-access.log")"
echo "tagwall peak RSS: logs off $(awk '/VmHWM/ {print $2, $3}' /proc/$tw_off/status), logs on $(awk '/VmHWM/ {print $2, $3}' /proc/$tw_on/status), stderr blocked $(awk '/VmHWM/ {print $2, $3}' /proc/$tw_blk/status)"
